"""/v1/schedules: create, list, show, change, pause, delete and run now; every field checked."""

import base64
import json
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from fastapi.testclient import TestClient

from tests.api.conftest import Account, unique_image, upload

FEED = "https://shop.example.com/feed.csv"


def create(client: TestClient, account: Account, **fields: Any) -> Any:
    body = {"name": "nightly", "cron": "0 2 * * *", "source_url": FEED, **fields}
    return client.post("/v1/schedules", headers=account.headers, json=body)


def created(client: TestClient, account: Account, **fields: Any) -> dict[str, Any]:
    answer = create(client, account, **fields)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_a_schedule_runs_next_at_its_cron_time_in_its_own_time_zone(
    client: TestClient, account: Account
) -> None:
    schedule = created(client, account, cron="30 2 * * *", timezone="Europe/Paris")
    local = datetime.fromisoformat(schedule["next_run_local"])
    assert (local.hour, local.minute) == (2, 30)
    assert local.utcoffset() == local.astimezone(ZoneInfo("Europe/Paris")).utcoffset()
    assert datetime.fromisoformat(schedule["next_run_at"]) == local
    assert schedule["enabled"] is True
    assert schedule["source_url"] == FEED
    assert schedule["item_count"] is None
    assert schedule["options"] == {"aspect_ratio": "9:16", "duration_s": 15, "language": "en"}


def test_a_schedule_with_stored_items_keeps_them(client: TestClient, account: Account) -> None:
    asset = upload(client, account, unique_image()).json()["id"]
    items = [{"ref": "sku-1", "title": "Mug", "images": [asset]}, {"title": "Cup"}]
    schedule = created(client, account, source_url=None, items=items)
    assert schedule["item_count"] == 2
    shown = client.get(f"/v1/schedules/{schedule['id']}", headers=account.headers).json()
    assert shown["items"] == items


@pytest.mark.parametrize(
    ("fields", "loc", "words"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "unknown time zone"),
        ({"cron": "0 2 * *"}, "cron", "five fields"),
        ({"cron": "61 2 * * *"}, "cron", "not a valid cron expression"),
        ({"cron": "0 0 31 2 *"}, "cron", "never matches"),
        ({"source_url": "ftp://shop.example.com/feed.csv"}, "source_url", "http(s) URL"),
        ({"source_url": "http://127.0.0.1/feed.csv"}, "source_url", "private address"),
        ({"source_url": None}, "source_url", "needs a source_url"),
        ({"items": [{"title": "Mug"}]}, "source_url", "not both"),
        ({"prompt_template": "Make {colour}"}, "prompt_template", "unknown placeholder"),
        ({"priority": 12}, "priority", "less than or equal to 9"),
        ({"options": {"aspect_ratio": "4:3"}}, "options.aspect_ratio", "'9:16'"),
        ({"every": "day"}, "every", "extra inputs"),
    ],
)
def test_an_invalid_schedule_is_refused_naming_the_field(
    client: TestClient, account: Account, fields: dict[str, Any], loc: str, words: str
) -> None:
    answer = create(client, account, **fields)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["details"][0]["loc"] == loc
    assert words in error["message"]


def test_stored_items_are_checked_like_a_batch(client: TestClient, account: Account) -> None:
    missing = str(uuid.uuid4())
    items = [{"ref": "a", "title": "Mug"}, {"ref": "b", "title": "Cup", "images": [missing]}]
    answer = create(client, account, source_url=None, items=items)
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["loc"] == "items[1].images[0]"
    twins = [{"ref": "a", "title": "Mug"}, {"ref": "a", "title": "Cup"}]
    answer = create(client, account, source_url=None, items=twins)
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["loc"] == "items[1].ref"
    assert "appears twice" in answer.json()["error"]["message"]


def test_pausing_clears_the_next_run_and_resuming_plans_it_again(
    client: TestClient, account: Account
) -> None:
    schedule = created(client, account)
    path = f"/v1/schedules/{schedule['id']}"
    paused = client.patch(path, headers=account.headers, json={"enabled": False}).json()
    assert paused["enabled"] is False
    assert paused["next_run_at"] is None
    resumed = client.patch(path, headers=account.headers, json={"enabled": True}).json()
    assert resumed["next_run_at"] == schedule["next_run_at"]


def test_a_change_of_cron_or_zone_moves_the_next_run(client: TestClient, account: Account) -> None:
    schedule = created(client, account)
    path = f"/v1/schedules/{schedule['id']}"
    body = {"cron": "15 6 * * 1", "timezone": "America/New_York", "name": "weekly"}
    changed = client.patch(path, headers=account.headers, json=body)
    assert changed.status_code == 200, changed.text
    local = datetime.fromisoformat(changed.json()["next_run_local"])
    assert (local.weekday(), local.hour, local.minute) == (0, 6, 15)
    assert changed.json()["name"] == "weekly"


def test_switching_the_source_from_a_feed_to_items_drops_the_feed(
    client: TestClient, account: Account
) -> None:
    schedule = created(client, account)
    path = f"/v1/schedules/{schedule['id']}"
    changed = client.patch(path, headers=account.headers, json={"items": [{"title": "Mug"}]})
    assert changed.json()["source_url"] is None
    assert changed.json()["item_count"] == 1


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"timezone": "Nowhere/Town"}, "timezone"),
        ({"cron": None}, "cron"),
        ({"source_url": "https://shop.example.com/b.csv", "items": [{"title": "M"}]}, "source_url"),
        ({"source_url": None}, "source_url"),
        ({"webhook_url": "not a url"}, "webhook_url"),
    ],
)
def test_an_invalid_change_is_refused_and_changes_nothing(
    client: TestClient, account: Account, body: dict[str, Any], loc: str
) -> None:
    schedule = created(client, account)
    path = f"/v1/schedules/{schedule['id']}"
    answer = client.patch(path, headers=account.headers, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["loc"] == loc
    assert client.get(path, headers=account.headers).json() == {**schedule}


def test_schedules_are_listed_newest_first_a_page_at_a_time(
    client: TestClient, account: Account
) -> None:
    ids = [created(client, account, name=f"s{n}")["id"] for n in range(3)]
    first = client.get("/v1/schedules?limit=2", headers=account.headers).json()
    assert [item["id"] for item in first["items"]] == ids[::-1][:2]
    rest = client.get(
        "/v1/schedules", headers=account.headers, params={"cursor": first["next_cursor"]}
    ).json()
    assert [item["id"] for item in rest["items"]] == ids[:1]
    assert rest["next_cursor"] is None


def test_a_deleted_schedule_is_gone(client: TestClient, account: Account) -> None:
    schedule = created(client, account)
    path = f"/v1/schedules/{schedule['id']}"
    assert client.delete(path, headers=account.headers).status_code == 204
    assert client.get(path, headers=account.headers).status_code == 404


def test_run_now_makes_the_schedule_due_and_asks_a_worker_to_fire_it(
    client: TestClient, account: Account, redis_client: redis.Redis
) -> None:
    schedule = created(client, account, enabled=False)
    answer = client.post(f"/v1/schedules/{schedule['id']}/run", headers=account.headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["next_run_at"] is not None
    messages = [json.loads(raw) for raw in redis_client.lrange("pipeline", 0, -1)]
    tasks = [m["headers"]["task"] for m in messages]
    assert "worker.fire_schedules" in tasks
    body = json.loads(base64.b64decode(messages[tasks.index("worker.fire_schedules")]["body"]))
    assert body[1] == {"reason": "run_now"}
    # Left due, it would be claimed by the worker tests' schedulers, which share the database.
    client.delete(f"/v1/schedules/{schedule['id']}", headers=account.headers)


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("PATCH", "", {"name": "mine now"}),
        ("DELETE", "", None),
        ("POST", "/run", None),
    ],
)
def test_another_tenants_schedule_is_not_found(
    client: TestClient,
    account: Account,
    other_account: Account,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    schedule = created(client, account)
    path = f"/v1/schedules/{schedule['id']}{suffix}"
    answer = client.request(method, path, headers=other_account.headers, json=body)
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == "schedule not found"
    listed = client.get("/v1/schedules", headers=other_account.headers).json()
    assert schedule["id"] not in [item["id"] for item in listed["items"]]
    mine = client.get(f"/v1/schedules/{schedule['id']}", headers=account.headers).json()
    assert mine["name"] == "nightly"


def test_a_malformed_schedule_id_is_not_found(client: TestClient, account: Account) -> None:
    assert client.get("/v1/schedules/nope", headers=account.headers).status_code == 404
