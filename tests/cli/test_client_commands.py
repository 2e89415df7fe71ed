"""`nemo-batch submit | status | download` against the real API served over HTTP."""

import re
import uuid
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from cli.main import app
from core.storage import LocalStorage
from tests.cli.conftest import ServedApi, Tenant

runner = CliRunner()
BATCH_ID = re.compile(r"batch ([0-9a-f]{8}-[0-9a-f-]{27})")


def run(api: ServedApi, key: str, *args: str) -> Any:
    return runner.invoke(app, [*args, "--api-url", api.url, "--api-key-stdin"], input=f"{key}\n")


def write_csv(folder: Path) -> Path:
    """Two products; the first names a picture beside the CSV, as a person would write it."""
    (folder / "pictures").mkdir()
    Image.new("RGB", (64, 48), "#3366cc").save(folder / "pictures" / "mug.png")
    path = folder / "products.csv"
    path.write_text(
        "ref,title,description,images,aspect_ratio\n"
        'mug-1,Blue mug,"A mug, blue",pictures/mug.png,1:1\n'
        "tee-2,Teal tee,Soft cotton,,16:9\n",
        encoding="utf-8",
    )
    return path


def submit(api_server: ServedApi, tenant: Tenant, folder: Path) -> str:
    result = run(api_server, tenant.key, "submit", str(write_csv(folder)), "--name", "cli")
    assert result.exit_code == 0, result.output
    match = BATCH_ID.search(result.output)
    assert match, result.output
    return match.group(1)


def jobs_of(batch_id: str) -> list[Any]:
    from core.db import session_scope
    from core.models import Job

    with session_scope() as session:
        return list(
            session.scalars(
                select(Job).where(Job.batch_id == uuid.UUID(batch_id)).order_by(Job.item_index)
            )
        )


def test_submitting_a_csv_uploads_its_local_pictures_and_prints_the_batch_id(
    api_server: ServedApi, tenant: Tenant, tmp_path: Path
) -> None:
    batch_id = submit(api_server, tenant, tmp_path)

    jobs = jobs_of(batch_id)
    assert [job.ref for job in jobs] == ["mug-1", "tee-2"]
    (image,) = jobs[0].input["images"]
    assert uuid.UUID(image["asset_id"] if isinstance(image, dict) else image)
    assert jobs[0].options["aspect_ratio"] == "1:1"


def test_status_shows_the_batch_with_its_counts_and_jobs(
    api_server: ServedApi, tenant: Tenant, tmp_path: Path
) -> None:
    batch_id = submit(api_server, tenant, tmp_path)

    result = run(api_server, tenant.key, "status", batch_id)

    assert result.exit_code == 0, result.output
    assert batch_id in result.output
    assert re.search(r"queued\s*┃", result.output), result.output
    assert re.search(r"cli\s*│\s*2\s*│", result.output), result.output
    assert "mug-1" in result.output and "tee-2" in result.output

    listing = run(api_server, tenant.key, "status")
    assert listing.exit_code == 0 and batch_id in listing.output


def test_download_writes_each_finished_video_and_poster(
    api_server: ServedApi, tenant: Tenant, tmp_path: Path, storage_dir: Path
) -> None:
    from core.db import session_scope
    from core.models import Job
    from core.states import JobState

    batch_id = submit(api_server, tenant, tmp_path)
    video, poster = b"\x00\x00\x00\x18ftypmp42" + b"v" * 5000, b"\xff\xd8\xff" + b"p" * 300
    storage = LocalStorage(storage_dir)
    video_key = storage.save_chunks("outputs", [video], "mp4").key
    poster_key = storage.save_chunks("posters", [poster], "jpg").key
    with session_scope() as session:
        first = session.get(Job, jobs_of(batch_id)[0].id)
        assert first is not None
        first.state = JobState.SUCCEEDED
        first.output = {
            "path": video_key,
            "poster_path": poster_key,
            "size": len(video),
            "duration_s": 6.0,
        }
    target = tmp_path / "videos"
    stale = target / ".mug-1.mp4.part"
    target.mkdir()
    stale.write_bytes(video[:1000])  # an interrupted earlier download is resumed

    result = run(api_server, tenant.key, "download", batch_id, str(target))

    assert result.exit_code == 0, result.output
    assert (target / "mug-1.mp4").read_bytes() == video
    assert (target / "mug-1.jpg").read_bytes() == poster
    assert not stale.exists()
    assert sorted(path.name for path in target.iterdir()) == ["mug-1.jpg", "mug-1.mp4"]
    assert "1 of 2 videos" in result.output
    assert "6.0 s" in result.output

    again = run(api_server, tenant.key, "download", batch_id, str(target))
    assert again.exit_code == 0, again.output
    assert (target / "mug-1.mp4").read_bytes() == video


def test_a_bad_key_is_refused_with_the_apis_message_and_exit_1(
    api_server: ServedApi, tmp_path: Path, settings: object
) -> None:
    result = run(api_server, "nb_not-a-real-key", "status", str(uuid.uuid4()))

    assert result.exit_code == 1
    assert "HTTP 401 unauthorized" in result.output
    assert "the API key is not valid or was revoked" in result.output
    assert "Traceback" not in result.output


def test_an_unknown_batch_and_an_unreachable_api_say_what_is_wrong(
    api_server: ServedApi, tenant: Tenant, tmp_path: Path
) -> None:
    missing = run(api_server, tenant.key, "status", str(uuid.uuid4()))
    assert missing.exit_code == 1
    assert "HTTP 404 not_found: batch not found" in missing.output

    down = runner.invoke(
        app,
        ["status", "--api-url", "http://127.0.0.1:9", "--api-key-stdin"],
        input=f"{tenant.key}\n",
    )
    assert down.exit_code == 1
    assert "cannot reach the API at http://127.0.0.1:9" in down.output


def test_a_csv_naming_a_missing_file_fails_before_anything_is_sent(
    api_server: ServedApi, tenant: Tenant, tmp_path: Path
) -> None:
    path = tmp_path / "products.csv"
    path.write_text("ref,title,images\nx,X,nowhere/mug.png\n", encoding="utf-8")

    result = run(api_server, tenant.key, "submit", str(path))

    assert result.exit_code == 1
    assert "line 2, column images: 'nowhere/mug.png'" in result.output
