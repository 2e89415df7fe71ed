"""Keeping a job's URL inputs: bounded in bytes, only from public addresses unless allowed,
only accepted media, each URL fetched once, and a reason a user can act on when it fails."""

from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from core.storage import LocalStorage
from tests.api.conftest import png_bytes
from tests.worker.test_input_urls_e2e import image_server
from worker.inputs import Fetcher, keep_inputs

PNG = png_bytes("#445566", (32, 32))


def job_input(*urls: str) -> dict[str, Any]:
    return {"images": [{"url": url, "kind": "image"} for url in urls], "clips": [], "music": None}


def fetcher(tmp_path: Path, **settings: Any) -> Fetcher:
    values: dict[str, Any] = {"storage_dir": tmp_path, "allow_private_urls": True, **settings}
    return Fetcher(Settings(**values), LocalStorage(tmp_path))


def test_each_url_is_kept_once_under_its_content_hash(tmp_path: Path) -> None:
    with image_server({"/a.png": PNG, "/b.png": PNG}) as shop, fetcher(tmp_path) as fetch:
        first, failure = keep_inputs(job_input(shop.url("/a.png"), shop.url("/b.png")), {}, fetch)
        again, _ = keep_inputs(job_input(shop.url("/a.png")), {}, fetch)
    assert failure is None
    assert first[shop.url("/a.png")]["key"] == first[shop.url("/b.png")]["key"]
    assert first[shop.url("/a.png")]["key"].startswith("inputs/")
    assert first[shop.url("/a.png")]["key"].endswith(".png")
    assert again == {shop.url("/a.png"): first[shop.url("/a.png")]}
    assert shop.requests == {"/a.png": 1, "/b.png": 1}
    assert LocalStorage(tmp_path).read_bytes(first[shop.url("/a.png")]["key"]) == PNG


def test_urls_already_kept_are_not_fetched_again(tmp_path: Path) -> None:
    kept = {"https://gone.example/a.png": {"key": "inputs/ab/" + "ab" * 32 + ".png"}}
    with fetcher(tmp_path) as fetch:
        fetched, failure = keep_inputs(job_input("https://gone.example/a.png"), kept, fetch)
    assert (fetched, failure) == (kept, None)


@pytest.mark.parametrize(
    ("path", "settings", "reason"),
    [
        ("/missing.png", {}, "answered HTTP 404"),
        ("/big.png", {"max_upload_bytes": 100}, "larger than the limit of 100 bytes"),
        ("/page.png", {}, "accepted formats"),
        ("/a.png", {"allow_private_urls": False}, "private"),
    ],
)
def test_a_url_that_cannot_be_kept_says_why(
    tmp_path: Path, path: str, settings: dict[str, Any], reason: str
) -> None:
    images = {"/a.png": PNG, "/big.png": PNG, "/page.png": b"<html>not an image</html>"}
    with image_server(images) as shop, fetcher(tmp_path, **settings) as fetch:
        _, failure = keep_inputs(job_input(shop.url("/a.png"), shop.url(path)), {}, fetch)
    assert failure is not None and reason in failure.message, failure
    assert "retry the job" in failure.message
    assert failure.code == ("unsupported_media" if path == "/page.png" else "input_unreachable")
    assert [p for p in (tmp_path / "tmp").glob("*")] == [], "nothing half-fetched is left"


def test_a_batch_is_fetched_a_few_urls_at_a_time_each_once(tmp_path: Path) -> None:
    images = {f"/{n}.png": png_bytes(f"#0000{n:02x}") for n in range(6)}
    with image_server(images) as shop, fetcher(tmp_path, feed_fetch_concurrency=3) as fetch:
        urls = [shop.url(path) for path in images] * 3 + [shop.url("/gone.png")]
        fetch.prefetch(urls)
        kept, failure = keep_inputs(job_input(*urls[:6]), {}, fetch)
        _, gone = keep_inputs(job_input(shop.url("/gone.png")), {}, fetch)
    assert failure is None and len({copy["key"] for copy in kept.values()}) == 6
    assert gone is not None and "HTTP 404" in gone.message
    assert shop.requests == {**{path: 1 for path in images}, "/gone.png": 1}


def test_a_full_disk_makes_the_fetch_step_wait_saying_so_and_keeps_nothing_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import uuid
    from typing import cast

    from core.settings import get_settings
    from core.states import JobState
    from core.storage import Storage
    from worker.outcomes import Advance, Fail, Wait
    from worker.runner import StepContext
    from worker.steps.fetch import fetch_step

    settings = get_settings()
    for name, value in {
        "storage_dir": tmp_path,
        "storage_url": "",
        "allow_private_urls": True,
        "storage_wait_max_s": 3600.0,
    }.items():
        monkeypatch.setattr(settings, name, value)

    def full(self: Storage, area: str, temporary: Path, *args: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    with image_server({"/a.png": PNG}) as shop:
        context = StepContext(
            job_id=uuid.uuid4(),
            step=JobState.FETCH,
            step_attempts=1,
            tenant_id=uuid.uuid4(),
            input=job_input(shop.url("/a.png")),
            options={},
            checkpoint={},
            token=cast(Any, None),
            client=cast(Any, None),
            lease_s=60.0,
            save_checkpoint=lambda values: None,
        )
        with monkeypatch.context() as patch:
            patch.setattr(Storage, "adopt", full)
            waiting = fetch_step(context)
        assert isinstance(waiting, Wait), waiting
        assert "disk is full" in waiting.fields["error_message"]
        assert "errno" not in waiting.fields["error_message"].lower()
        assert [p for p in (tmp_path / "tmp").glob("*")] == [], "nothing half-fetched is left"

        context.checkpoint.update(waiting.checkpoint)
        done = fetch_step(context)
        assert isinstance(done, Advance), done
        assert done.fields == {"error_message": None}
        assert done.checkpoint["storage_wait_since"] is None

        monkeypatch.setattr(settings, "storage_wait_max_s", 0.0)
        with monkeypatch.context() as patch:
            patch.setattr(Storage, "adopt", full)
            context.checkpoint = {}
            failed = fetch_step(context)
        assert isinstance(failed, Fail) and failed.code == "insufficient_storage"
        assert "could not be kept" in failed.message
