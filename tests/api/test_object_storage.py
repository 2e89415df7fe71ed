"""The API on object storage (a real SeaweedFS): uploads land in the bucket, outputs are served
from it whole, by range, or as a short-lived presigned redirect, and no secret shows."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.settings import Settings
from core.storage import Storage, storage_for
from tests.api.conftest import Account, create_batch, job_ids, png_bytes, update_job


def s3_settings(base: Settings, environment: dict[str, str], storage_dir: Path) -> Settings:
    return base.model_copy(
        update={
            "storage_dir": storage_dir,
            "storage_url": environment["STORAGE_URL"],
            "aws_endpoint_url": environment["AWS_ENDPOINT_URL"],
            "aws_access_key_id": environment["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": environment["AWS_SECRET_ACCESS_KEY"],
            "aws_region": environment["AWS_REGION"],
        }
    )


@pytest.fixture()
def s3_api(
    settings: Any, s3_environment: dict[str, str], tmp_path: Path
) -> Iterator[tuple[TestClient, Storage, Settings]]:
    from api.app import create_app

    api_settings = s3_settings(settings, s3_environment, tmp_path / "api-host")
    app: FastAPI = create_app(api_settings)
    with TestClient(app) as client:
        yield client, storage_for(api_settings), api_settings


def finished_job(client: TestClient, account: Account, storage: Storage) -> tuple[str, bytes]:
    batch = create_batch(client, account)
    (job_id,) = job_ids(client, account, batch["id"])
    body = bytes(range(256)) * 8 + job_id.encode()
    video = storage.save_chunks("outputs", [body], "mp4")
    poster = storage.save_chunks("posters", [b"\xff\xd8\xff" + job_id.encode()], "jpg")
    output = {"path": video.key, "poster_path": poster.key, "size": len(body), "duration": 5.0}
    update_job(job_id, state="succeeded", output=output)
    return job_id, body


def test_an_upload_is_stored_in_the_bucket_not_on_the_api_disk(
    s3_api: tuple[TestClient, Storage, Settings], account: Account, tmp_path: Path
) -> None:
    client, storage, settings = s3_api
    image = png_bytes("#123456", size=(20, 20))
    answer = client.post(
        "/v1/assets", headers=account.headers, files={"file": ("a.png", image, "image/png")}
    )
    assert answer.status_code == 201, answer.text
    from core.db import session_scope
    from core.models import Asset

    with session_scope() as session:
        asset = session.get(Asset, uuid.UUID(answer.json()["id"]))
        assert asset is not None
        assert storage.read_bytes(asset.path) == image
    on_disk = [p for p in Path(settings.storage_dir).rglob("*") if p.is_file()]
    assert on_disk == [], "nothing of it stays on the API host"


def test_a_video_is_served_from_object_storage_whole_and_by_range(
    s3_api: tuple[TestClient, Storage, Settings], account: Account
) -> None:
    client, storage, _ = s3_api
    job_id, body = finished_job(client, account, storage)
    whole = client.get(f"/v1/jobs/{job_id}/video", headers=account.headers)
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.content == body
    part = client.get(
        f"/v1/jobs/{job_id}/video", headers={**account.headers, "Range": "bytes=100-199"}
    )
    assert part.status_code == 206
    assert part.content == body[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(body)}"
    last = client.get(f"/v1/jobs/{job_id}/video", headers={**account.headers, "Range": "bytes=-10"})
    assert last.status_code == 206 and last.content == body[-10:]
    none = client.get(f"/v1/jobs/{job_id}/video", headers={**account.headers, "Range": "bytes=-0"})
    assert none.status_code == 416
    outside = client.get(
        f"/v1/jobs/{job_id}/video", headers={**account.headers, "Range": f"bytes={len(body)}-"}
    )
    assert outside.status_code == 416
    malformed = client.get(
        f"/v1/jobs/{job_id}/video", headers={**account.headers, "Range": "bytes=x-1"}
    )
    assert malformed.status_code == 400
    poster = client.get(f"/v1/jobs/{job_id}/poster", headers=account.headers)
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"


def test_redirect_answers_a_short_lived_presigned_url(
    s3_api: tuple[TestClient, Storage, Settings], account: Account
) -> None:
    client, storage, settings = s3_api
    job_id, body = finished_job(client, account, storage)
    answer = client.get(
        f"/v1/jobs/{job_id}/video?redirect=1", headers=account.headers, follow_redirects=False
    )
    assert answer.status_code == 307
    location = answer.headers["location"]
    assert str(settings.aws_secret_access_key) not in location
    assert f"X-Amz-Expires={settings.storage_redirect_ttl_s}" in location
    assert httpx.get(location).content == body
    assert client.get(f"/v1/jobs/{job_id}/video?redirect=1").status_code == 401


def test_an_output_missing_from_the_bucket_is_404_saying_so(
    s3_api: tuple[TestClient, Storage, Settings], account: Account
) -> None:
    client, _, _ = s3_api
    batch = create_batch(client, account)
    (job_id,) = job_ids(client, account, batch["id"])
    update_job(job_id, state="succeeded", output={"path": "outputs/ab/" + "ab" * 32 + ".mp4"})
    for redirect in ("", "?redirect=1"):
        answer = client.get(f"/v1/jobs/{job_id}/video{redirect}", headers=account.headers)
        assert answer.status_code == 404
        assert "missing from storage" in answer.json()["error"]["message"]


def test_redirect_with_local_storage_serves_the_file(
    client: TestClient, account: Account, storage_dir: Path
) -> None:
    from core.storage import LocalStorage

    storage = LocalStorage(storage_dir)
    job_id, body = finished_job(client, account, storage)
    answer = client.get(
        f"/v1/jobs/{job_id}/video?redirect=1", headers=account.headers, follow_redirects=False
    )
    assert answer.status_code == 200 and answer.content == body


def test_a_batch_with_image_urls_asks_a_worker_to_keep_them_at_once(
    client: TestClient, account: Account, redis_client: Any
) -> None:
    import json

    with_urls = create_batch(
        client, account, items=[{"title": "Mug", "images": ["https://shop.example/mug.png"]}]
    )
    without = create_batch(client, account)
    messages = [json.loads(raw) for raw in redis_client.lrange("pipeline", 0, -1)]
    fetches = [m for m in messages if m["headers"]["task"] == "worker.fetch_inputs"]
    assert [with_urls["id"] in m["headers"]["kwargsrepr"] for m in fetches] == [True]
    assert not any(without["id"] in m["headers"]["kwargsrepr"] for m in fetches)
