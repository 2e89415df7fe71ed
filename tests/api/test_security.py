"""What one tenant can reach of another's (nothing), how keys are kept (hashed, never echoed),
and where inputs can point (inside storage; public addresses unless private ones are allowed)."""

import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.api.conftest import Account, create_batch, unique_image, upload


def _owned_ids(client: TestClient, account: Account) -> dict[str, str]:
    asset = upload(client, account, unique_image()).json()
    batch = create_batch(client, account, items=[{"title": "Mug", "images": [asset["id"]]}])
    jobs = client.get(f"/v1/batches/{batch['id']}/jobs", headers=account.headers).json()
    body = {"name": "nightly", "cron": "0 2 * * *", "source_url": "https://shop.example.com/f.csv"}
    schedule = client.post("/v1/schedules", headers=account.headers, json=body).json()
    return {
        "asset": asset["id"],
        "batch": batch["id"],
        "job": jobs["items"][0]["id"],
        "schedule": schedule["id"],
    }


ROUTES = [
    ("GET", "/v1/assets/{asset}"),
    ("GET", "/v1/batches/{batch}"),
    ("GET", "/v1/batches/{batch}/jobs"),
    ("GET", "/v1/batches/{batch}/deliveries"),
    ("POST", "/v1/batches/{batch}/cancel"),
    ("POST", "/v1/batches/{batch}/retry-failed"),
    ("POST", "/v1/batches/{batch}/resume"),
    ("GET", "/v1/jobs/{job}"),
    ("GET", "/v1/jobs/{job}/events"),
    ("POST", "/v1/jobs/{job}/cancel"),
    ("POST", "/v1/jobs/{job}/retry"),
    ("GET", "/v1/jobs/{job}/video"),
    ("GET", "/v1/jobs/{job}/poster"),
    ("GET", "/v1/schedules/{schedule}"),
    ("PATCH", "/v1/schedules/{schedule}"),
    ("POST", "/v1/schedules/{schedule}/run"),
    ("DELETE", "/v1/schedules/{schedule}"),
]


def test_a_tenant_reaches_nothing_of_another_by_copied_or_guessed_ids(
    client: TestClient, account: Account, other_account: Account
) -> None:
    theirs = _owned_ids(client, other_account)
    guessed = {kind: str(uuid.uuid4()) for kind in theirs}
    for method, template in ROUTES:
        for ids in (theirs, guessed):
            path = template.format(**ids)
            body = {"enabled": False} if method == "PATCH" else None
            answer = client.request(method, path, headers=account.headers, json=body)
            assert answer.status_code == 404, f"{method} {path}: {answer.status_code}"
            assert str(ids[template.split("{")[1].split("}")[0]]) not in answer.text.replace(
                path, ""
            ), f"{method} {path} echoes the id"
    listed = [
        client.get("/v1/batches", headers=account.headers).text,
        client.get("/v1/schedules", headers=account.headers).text,
    ]
    for own_id in theirs.values():
        assert all(own_id not in text for text in listed)
    mine = client.get(f"/v1/batches/{theirs['batch']}", headers=other_account.headers)
    assert mine.status_code == 200, "the owner still reaches it (nothing was changed)"
    assert mine.json()["status"] != "canceled"


def test_api_keys_are_stored_as_sha256_and_never_echoed(
    client: TestClient, account: Account
) -> None:
    import hashlib

    from core.db import session_scope
    from core.models import ApiKey

    with session_scope() as session:
        stored = session.scalars(select(ApiKey).where(ApiKey.tenant_id == account.tenant_id)).one()
        assert stored.key_hash == hashlib.sha256(account.key.encode()).hexdigest()
        columns = [str(getattr(stored, c.key)) for c in ApiKey.__table__.columns]
        assert all(account.key not in value for value in columns)
        assert stored.prefix and len(stored.prefix) < len(account.key) // 2
    answers = [
        client.get("/v1/batches", headers=account.headers),
        client.post("/v1/batches", headers=account.headers, json={"items": [{"title": "Mug"}]}),
        client.post("/v1/batches", headers=account.headers, json={"items": [{}]}),
        client.get("/v1/jobs/not-an-id", headers=account.headers),
        client.get("/v1/credits", headers=account.headers),
        client.get("/v1/batches", headers={"Authorization": f"Bearer {account.key}x"}),
        client.get("/v1/batches", headers={"Authorization": f"Token {account.key}"}),
    ]
    for answer in answers:
        assert account.key not in answer.text
        assert account.key not in str(answer.headers)


@pytest.mark.parametrize(
    "filename", ["../../etc/passwd", "/etc/passwd", "..\\..\\win.ini", "a/../../b.png", "\x00.png"]
)
def test_an_upload_is_stored_inside_storage_whatever_its_name(
    client: TestClient, account: Account, settings: Any, filename: str
) -> None:
    from core.db import session_scope
    from core.models import Asset

    answer = upload(client, account, unique_image(), name=filename)
    assert answer.status_code == 201, answer.text
    with session_scope() as session:
        asset = session.get(Asset, uuid.UUID(answer.json()["id"]))
        assert asset is not None
        stored = Path(asset.path)
        root = Path(settings.assets_dir).resolve()
        full = (stored if stored.is_absolute() else Path(settings.storage_dir) / stored).resolve()
        assert full.is_relative_to(root), full
        assert full.is_file()
        assert "/" not in asset.filename and "\\" not in asset.filename
        assert ".." not in Path(asset.path).parts


PRIVATE_URLS = [
    "http://127.0.0.1/a.png",
    "http://10.1.2.3/a.png",
    "http://192.168.0.10/a.png",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/a.png",
    "http://0.0.0.0/a.png",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_urls_to_private_addresses_are_refused_at_intake(
    client: TestClient, account: Account, url: str
) -> None:
    image = client.post(
        "/v1/batches", headers=account.headers, json={"items": [{"title": "M", "images": [url]}]}
    )
    assert image.status_code == 422, image.text
    assert "private" in image.text
    hook = client.post(
        "/v1/batches", headers=account.headers, json={"items": [{"title": "M"}], "webhook_url": url}
    )
    assert hook.status_code == 422, hook.text


def test_private_urls_are_accepted_when_allowed(settings: Any, account: Account) -> None:
    from api.app import create_app

    app: FastAPI = create_app(settings.model_copy(update={"allow_private_urls": True}))
    with TestClient(app) as allowed:
        body: dict[str, Any] = {"items": [{"title": "M", "images": [PRIVATE_URLS[0]]}]}
        answer = allowed.post("/v1/batches", headers=account.headers, json=body)
    assert answer.status_code == 201, answer.text


def test_a_name_that_resolves_to_a_private_address_is_refused_before_connecting() -> None:
    from core.netcheck import PrivateAddress, resolve_public

    with pytest.raises(PrivateAddress, match="ALLOW_PRIVATE_URLS"):
        resolve_public("localhost", 80)
    assert resolve_public("localhost", 80, allow_private=True)
