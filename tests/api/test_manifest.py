"""A batch's manifest (CSV and JSON) and the zip of its finished videos, named by ref."""

import csv
import hashlib
import io
import tracemalloc
import uuid
import zipfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import Account, create_batch, job_ids, update_job


def finish(storage_dir: Path, job_id: str, content: bytes, *, poster: bool = True) -> str:
    """Leave a job as the download step does: succeeded, its MP4 (and poster) in storage."""
    digest = hashlib.sha256(content).hexdigest()
    folder = storage_dir / "outputs" / digest[:2]
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / f"{digest}.mp4"
    video.write_bytes(content)
    output: dict[str, Any] = {"path": str(video), "sha256": digest, "size": len(content)}
    output["duration_s"] = 7.5
    if poster:
        (folder / f"{digest}.jpg").write_bytes(b"\xff\xd8\xff" + b"\0" * 40)
        output["poster_path"] = str(folder / f"{digest}.jpg")
    update_job(job_id, state="succeeded", output=output)
    return digest


def three_products(client: TestClient, account: Account, storage_dir: Path) -> dict[str, Any]:
    """mug-1 succeeded, mug/2 (an unsafe ref) failed, a third (no ref) still queued."""
    items = [
        {"ref": "mug-1", "title": "Blue mug"},
        {"ref": "mug/2", "title": 'Red, "big" mug'},
        {"title": "Plain cup"},
    ]
    batch = create_batch(client, account, name="spring catalogue", items=items)
    first, second, _ = job_ids(client, account, batch["id"])
    finish(storage_dir, first, b"video of mug-1" * 100)
    update_job(second, state="failed", error_code="render_failed", error_message="render died")
    return {"batch": batch, "first": first, "second": second}


def test_the_json_manifest_lists_every_job_with_its_result(
    client: TestClient, account: Account, storage_dir: Path
) -> None:
    made = three_products(client, account, storage_dir)
    answer = client.get(f"/v1/batches/{made['batch']['id']}/manifest.json", headers=account.headers)
    assert answer.status_code == 200, answer.text
    manifest = answer.json()
    assert manifest["name"] == "spring catalogue"
    first, second, third = manifest["items"]
    content = b"video of mug-1" * 100
    assert first == {
        "item_index": 0,
        "ref": "mug-1",
        "title": "Blue mug",
        "state": "succeeded",
        "error_code": None,
        "error_message": None,
        "video_url": f"http://testserver/v1/jobs/{made['first']}/video",
        "poster_url": f"http://testserver/v1/jobs/{made['first']}/poster",
        "duration_s": 7.5,
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    assert (second["state"], second["error_code"], second["error_message"]) == (
        "failed",
        "render_failed",
        "render died",
    )
    assert second["video_url"] is None
    assert (third["ref"], third["title"], third["state"]) == (None, "Plain cup", "queued")
    video = client.get(first["video_url"], headers=account.headers)
    assert video.content == content, "the manifest's URL serves the video it describes"


def test_the_csv_manifest_has_a_header_and_one_row_per_job(
    client: TestClient, account: Account, storage_dir: Path
) -> None:
    made = three_products(client, account, storage_dir)
    answer = client.get(f"/v1/batches/{made['batch']['id']}/manifest.csv", headers=account.headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert 'filename="spring-catalogue.csv"' in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert list(rows[0]) == [
        "item_index", "ref", "title", "state", "error_code", "error_message",
        "video_url", "poster_url", "duration_s", "size", "sha256",
    ]  # fmt: skip
    assert [row["ref"] for row in rows] == ["mug-1", "mug/2", ""]
    assert rows[1]["title"] == 'Red, "big" mug', "quoted fields survive"
    assert rows[0]["video_url"].endswith(f"/v1/jobs/{made['first']}/video")
    assert rows[1]["error_code"] == "render_failed" and rows[1]["video_url"] == ""


def test_a_large_batch_manifest_reads_every_page(
    client: TestClient, account: Account, storage_dir: Path
) -> None:
    items = [{"ref": f"sku-{index}", "title": f"Product {index}"} for index in range(2500)]
    batch = create_batch(client, account, items=items)
    answer = client.get(f"/v1/batches/{batch['id']}/manifest.csv", headers=account.headers)
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [row["ref"] for row in rows] == [f"sku-{index}" for index in range(2500)]


def test_a_title_that_looks_like_a_formula_reaches_a_spreadsheet_as_text(
    client: TestClient, account: Account, storage_dir: Path
) -> None:
    items = [
        {"ref": "=1+2", "title": '=HYPERLINK("http://evil.example","click")'},
        {"ref": "@sum", "title": "-20% mug"},
        {"ref": "plain", "title": "Mug = cup"},
    ]
    batch = create_batch(client, account, items=items)
    answer = client.get(f"/v1/batches/{batch['id']}/manifest.csv", headers=account.headers)
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(row["ref"], row["title"]) for row in rows] == [
        ("'=1+2", '\'=HYPERLINK("http://evil.example","click")'),
        ("'@sum", "'-20% mug"),
        ("plain", "Mug = cup"),
    ]
    raw = client.get(f"/v1/batches/{batch['id']}/manifest.json", headers=account.headers).json()
    assert raw["items"][0]["ref"] == "=1+2", "the JSON manifest keeps the values as given"


def test_the_zip_holds_every_finished_video_named_by_its_ref(
    client: TestClient, account: Account, storage_dir: Path
) -> None:
    items = [{"ref": "mug-1"}, {"ref": "mug/2"}, {"ref": "MUG-1"}, {"title": "No ref"}]
    batch = create_batch(client, account, name="mugs", items=[{"title": "t", **i} for i in items])
    ids = job_ids(client, account, batch["id"])
    contents = [f"video {index} {uuid.uuid4()}".encode() * 50 for index in range(4)]
    for job_id, content in zip(ids[:3], contents, strict=False):
        finish(storage_dir, job_id, content)

    answer = client.get(f"/v1/batches/{batch['id']}/videos.zip", headers=account.headers)

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert 'filename="mugs.zip"' in answer.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert archive.testzip() is None
    assert archive.namelist() == ["mug-1.mp4", "mug_2.mp4", "MUG-1-2.mp4"]
    for name, content in zip(archive.namelist(), contents, strict=False):
        assert archive.read(name) == content


def test_a_zip_of_a_batch_with_no_finished_video_is_a_409_saying_so(
    client: TestClient, account: Account
) -> None:
    batch = create_batch(client, account)
    answer = client.get(f"/v1/batches/{batch['id']}/videos.zip", headers=account.headers)
    assert answer.status_code == 409
    assert "no video of this batch is finished" in answer.json()["error"]["message"]


def test_another_tenants_batch_is_a_404_for_manifest_and_zip(
    client: TestClient, account: Account, other_account: Account, storage_dir: Path
) -> None:
    made = three_products(client, account, storage_dir)
    for suffix in ("manifest.json", "manifest.csv", "videos.zip"):
        url = f"/v1/batches/{made['batch']['id']}/{suffix}"
        assert client.get(url, headers=other_account.headers).status_code == 404, suffix
        assert client.get(url).status_code == 401, suffix
        assert client.get(f"/v1/batches/nope/{suffix}", headers=account.headers).status_code == 404


def test_the_zip_streams_200_videos_with_flat_memory(
    client: TestClient, account: Account, storage_dir: Path
) -> None:
    """200 videos of 256 KB (50 MB of zip) pass through while Python holds under 8 MB."""
    from api.routes.manifest import videos_zip_stream
    from core.db import session_scope
    from core.models import Batch
    from core.storage import LocalStorage

    batch = create_batch(client, account, items=[{"title": f"p{i}"} for i in range(200)])
    for index, job_id in enumerate(job_ids_all(client, account, batch["id"])):
        finish(storage_dir, job_id, index.to_bytes(4) * 65536, poster=False)
    with session_scope() as session:
        row = session.get(Batch, uuid.UUID(batch["id"]))
        assert row is not None
        archive, videos = videos_zip_stream(session, LocalStorage(storage_dir), row)
    assert videos == 200
    tracemalloc.start()
    try:
        sent = sum(len(chunk) for chunk in archive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent == len(archive) > 200 * 262144
    assert peak < 8_000_000, f"the zip held {peak} bytes at once"


def job_ids_all(client: TestClient, account: Account, batch_id: str) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/batches/{batch_id}/jobs", headers=account.headers, params=params)
        ids += [job["id"] for job in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return ids
