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
