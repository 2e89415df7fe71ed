"""POST /v1/batches (JSON) stores every job with its resolved input, once, and dispatches."""

import base64
import hashlib
import json
import uuid
from typing import Any
from unittest.mock import ANY

import pytest
import redis
from fastapi.testclient import TestClient

from core.prompts import STANDING_INSTRUCTION
from tests.api.conftest import Account, create_batch, unique_image, upload


def stored_jobs(batch_id: str) -> list[Any]:
    from sqlalchemy import select

    from core.db import session_scope
    from core.models import Job

    with session_scope() as session:
        return list(
            session.scalars(
                select(Job).where(Job.batch_id == uuid.UUID(batch_id)).order_by(Job.item_index)
            )
        )


def test_a_batch_is_created_with_defaults_and_all_states_counted(
    client: TestClient, account: Account
) -> None:
    batch = create_batch(client, account, name="Autumn catalogue")
    assert batch["name"] == "Autumn catalogue"
    assert batch["status"] == "queued"
    assert batch["priority"] == 5
    assert batch["options"] == {"aspect_ratio": "9:16", "duration_s": 15, "language": "en"}
    assert batch["counts"]["queued"] == 1
    assert set(batch["counts"]) >= {"queued", "succeeded", "failed", "canceled", "render"}
    assert batch["progress"] == 0.0
    assert batch["item_count"] == 1


def test_each_job_stores_its_resolved_input_for_the_worker(
    client: TestClient, account: Account
) -> None:
    asset = upload(client, account, unique_image()).json()
    batch = create_batch(
        client,
        account,
        priority=8,
        options={"aspect_ratio": "16:9", "duration_s": 30, "language": "de"},
        prompt_template="{title} in {duration_s}s at {aspect_ratio}: {description}",
        items=[
            {
                "ref": "sku-1",
                "title": "Mug",
                "description": "Blue.",
                "images": [asset["id"], "https://cdn.example.com/mug.jpg"],
                "messages": ["Make the music calmer."],
                "options": {"duration_s": 10},
            },
            {"prompt": "A raw prompt", "title": None},
        ],
    )
    first, second = stored_jobs(batch["id"])
    assert first.priority == 8
    assert first.ref == "sku-1"
    rendered = f"Mug in 10s at 16:9: Blue. {STANDING_INSTRUCTION}"  # nobody answers the agent
    assert first.input["messages"] == [rendered, "Make the music calmer."]
    assert first.input["aspect_ratio"] == "16:9"
    assert first.input["duration_s"] == 10
    assert first.input["language"] == "de"
    assert first.input["images"][0]["asset_id"] == asset["id"]
    assert first.input["images"][0]["sha256"] == asset["sha256"]
    assert first.input["images"][0]["path"].startswith("assets/")
    assert first.input["images"][1] == {"url": "https://cdn.example.com/mug.jpg", "kind": "image"}
    canonical = json.dumps(
        {"input": first.input, "options": first.options},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert first.input_hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert second.input["messages"] == ["A raw prompt"]
    assert second.state == "queued"


def test_the_default_template_asks_for_a_ready_to_share_video(
    client: TestClient, account: Account
) -> None:
    batch = create_batch(client, account, items=[{"title": "Lamp", "description": "Warm light."}])
    (job,) = stored_jobs(batch["id"])
    message = job.input["messages"][0]
    assert '15-second 9:16 product video for "Lamp". Warm light.' in message
    assert "ready to share" in message


def test_a_created_batch_puts_a_dispatch_message_on_the_pipeline_queue(
    client: TestClient, account: Account, redis_client: redis.Redis
) -> None:
    batch = create_batch(client, account)
    messages = [json.loads(raw) for raw in redis_client.lrange("pipeline", 0, -1)]
    (message,) = [m for m in messages if batch["id"] in m["headers"]["kwargsrepr"]]
    assert message["headers"]["task"] == "worker.dispatch"
    assert message["content-type"] == "application/json"
    body = json.loads(base64.b64decode(message["body"]))
    assert body[1] == {"reason": "batch_created", "batch_id": batch["id"], "tenant_id": ANY}


def test_with_the_broker_down_the_batch_is_still_stored(settings: Any, account: Account) -> None:
    from api.app import create_app

    app = create_app(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/15"}))
    with TestClient(app) as client:
        answer = client.post(
            "/v1/batches", headers=account.headers, json={"items": [{"title": "Mug"}]}
        )
    assert answer.status_code == 201
    assert len(stored_jobs(answer.json()["id"])) == 1


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        ({"items": []}, "items", "at least 1"),
        ({"items": [{"title": "a"}, {"description": "no title"}]}, "items[1].title", "title or"),
        ({"items": [{"title": "a", "images": ["nope"]}]}, "items[0].images[0]", "asset id"),
        ({"items": [{"title": "a", "images": "https://x.io/a.jpg"}]}, "items[0].images", "array"),
        ({"items": [{"title": 5}]}, "items[0].title", "string"),
        ({"items": [{"title": "a", "colour": "red"}]}, "items[0].colour", "not permitted"),
        ({"priority": 10, "items": [{"title": "a"}]}, "priority", "less than or equal to 9"),
        ({"priority": 10**40, "items": [{"title": "a"}]}, "priority", "9"),
        (
            {"options": {"aspect_ratio": "4:3"}, "items": [{"title": "a"}]},
            "options.aspect_ratio",
            "9:16",
        ),
        ({"options": {"duration_s": 500}, "items": [{"title": "a"}]}, "options.duration_s", "120"),
        (
            {"items": [{"title": "a", "options": {"duration_s": 2}}]},
            "items[0].options.duration_s",
            "5",
        ),
        (
            {"prompt_template": "{title} {price}", "items": [{"title": "a"}]},
            "prompt_template",
            "{price}",
        ),
        ({"webhook_url": "ftp://x", "items": [{"title": "a"}]}, "webhook_url", "http"),
        (
            {"webhook_url": "http://127.0.0.1/hook", "items": [{"title": "a"}]},
            "webhook_url",
            "private",
        ),
        (
            {"items": [{"title": "a", "images": ["http://10.0.0.1/a.jpg"]}]},
            "items[0].images[0]",
            "private",
        ),
        ({"items": [{"title": "x" * 501}]}, "items[0].title", "500"),
    ],
)
def test_invalid_input_is_422_naming_the_item_and_field(
    client: TestClient, account: Account, body: dict[str, Any], loc: str, words: str
) -> None:
    answer = client.post("/v1/batches", headers=account.headers, json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["loc"] == loc
    assert words in error["details"][0]["message"]
    assert error["message"].startswith(f"{loc}: ")


def test_an_unknown_placeholder_is_named(client: TestClient, account: Account) -> None:
    answer = client.post(
        "/v1/batches",
        headers=account.headers,
        json={"prompt_template": "{title} for {audience}", "items": [{"title": "a"}]},
    )
    assert "{audience}" in answer.json()["error"]["message"]


def test_every_problem_is_listed_not_only_the_first(client: TestClient, account: Account) -> None:
    items = [{"title": "ok"}, {}, {"title": "ok"}, {"images": []}]
    answer = client.post("/v1/batches", headers=account.headers, json={"items": items})
    locs = [detail["loc"] for detail in answer.json()["error"]["details"]]
    assert locs == ["items[1].title", "items[3].title"]


def test_assets_must_exist_belong_to_the_tenant_and_have_the_right_kind(
    client: TestClient, account: Account, other_account: Account
) -> None:
    theirs = upload(client, other_account, unique_image()).json()["id"]
    mine = upload(client, account, unique_image()).json()["id"]
    items = [
        {"title": "a", "images": [mine, theirs]},
        {"title": "b", "images": [str(uuid.uuid4())]},
        {"title": "c", "clips": [mine]},
        {"title": "d", "music": mine},
    ]
    answer = client.post("/v1/batches", headers=account.headers, json={"items": items})
    assert answer.status_code == 422
    details = {detail["loc"]: detail["message"] for detail in answer.json()["error"]["details"]}
    assert "not found" in details["items[0].images[1]"]
    assert "not found" in details["items[1].images[0]"]
    assert "is an image, not a video" in details["items[2].clips[0]"]
    assert "not an audio" in details["items[3].music"]
    assert "items[0].images[0]" not in details


def test_malformed_json_is_400(client: TestClient, account: Account) -> None:
    headers = {**account.headers, "Content-Type": "application/json"}
    answer = client.post("/v1/batches", headers=headers, content=b'{"items": [')
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "malformed_json"


@pytest.mark.parametrize("body", [b"[]", b"null", b'"items"', b"42"])
def test_a_body_that_is_not_an_object_is_422(
    client: TestClient, account: Account, body: bytes
) -> None:
    headers = {**account.headers, "Content-Type": "application/json"}
    answer = client.post("/v1/batches", headers=headers, content=body)
    assert answer.status_code == 422


def test_another_content_type_is_415_listing_json_and_csv(
    client: TestClient, account: Account
) -> None:
    headers = {**account.headers, "Content-Type": "application/xml"}
    answer = client.post("/v1/batches", headers=headers, content=b"<batch/>")
    assert answer.status_code == 415
    assert "application/json" in answer.json()["error"]["message"]
    assert "text/csv" in answer.json()["error"]["message"]


def test_a_body_over_the_request_limit_is_413(settings: Any, account: Account) -> None:
    from api.app import create_app

    app = create_app(settings.model_copy(update={"max_request_bytes": 1000}))
    with TestClient(app) as client:
        items = [{"title": f"product {index}"} for index in range(100)]
        answer = client.post("/v1/batches", headers=account.headers, json={"items": items})
    assert answer.status_code == 413


def test_more_items_than_allowed_is_422(settings: Any, account: Account) -> None:
    from api.app import create_app

    app = create_app(settings.model_copy(update={"max_batch_items": 3}))
    with TestClient(app) as client:
        items = [{"title": f"product {index}"} for index in range(4)]
        answer = client.post("/v1/batches", headers=account.headers, json={"items": items})
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["loc"] == "items"


def test_the_same_idempotency_key_and_body_return_the_first_batch(
    client: TestClient, account: Account
) -> None:
    headers = {**account.headers, "Idempotency-Key": f"key-{uuid.uuid4()}"}
    body = {"items": [{"title": "Mug"}]}
    first = client.post("/v1/batches", headers=headers, json=body)
    second = client.post("/v1/batches", headers=headers, json=body)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert len(stored_jobs(first.json()["id"])) == 1


def test_the_same_idempotency_key_with_another_body_is_409(
    client: TestClient, account: Account
) -> None:
    headers = {**account.headers, "Idempotency-Key": f"key-{uuid.uuid4()}"}
    client.post("/v1/batches", headers=headers, json={"items": [{"title": "Mug"}]})
    answer = client.post("/v1/batches", headers=headers, json={"items": [{"title": "Cup"}]})
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "idempotency_conflict"


def test_idempotency_keys_are_per_tenant(
    client: TestClient, account: Account, other_account: Account
) -> None:
    key = f"key-{uuid.uuid4()}"
    body = {"items": [{"title": "Mug"}]}
    mine = client.post(
        "/v1/batches", headers={**account.headers, "Idempotency-Key": key}, json=body
    )
    theirs = client.post(
        "/v1/batches", headers={**other_account.headers, "Idempotency-Key": key}, json=body
    )
    assert theirs.status_code == 201
    assert theirs.json()["id"] != mine.json()["id"]


def test_batches_are_listed_newest_first_with_a_cursor(
    client: TestClient, account: Account
) -> None:
    created = [create_batch(client, account, name=f"b{index}")["id"] for index in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/batches", headers=account.headers, params=params).json()
        seen += [batch["id"] for batch in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))


def test_a_tampered_cursor_is_422(client: TestClient, account: Account) -> None:
    for cursor in ("garbage", "eyJ0IjogMX0", "eyJ0IjoieCIsImlkIjoieSJ9"):
        answer = client.get("/v1/batches", headers=account.headers, params={"cursor": cursor})
        assert answer.status_code == 422
        assert answer.json()["error"]["code"] == "invalid_cursor"


def test_a_tenant_never_sees_another_tenants_batches(
    client: TestClient, account: Account, other_account: Account
) -> None:
    batch = create_batch(client, account)
    assert batch["id"] not in [
        item["id"]
        for item in client.get("/v1/batches", headers=other_account.headers).json()["items"]
    ]
    for method, suffix in [
        ("GET", ""),
        ("GET", "/jobs"),
        ("POST", "/cancel"),
        ("POST", "/retry-failed"),
        ("POST", "/resume"),
    ]:
        answer = client.request(
            method, f"/v1/batches/{batch['id']}{suffix}", headers=other_account.headers
        )
        assert answer.status_code == 404, suffix
