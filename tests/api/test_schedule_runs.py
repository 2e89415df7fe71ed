"""One run of a schedule at a time, and no schedule that runs more often than the minimum
interval."""

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Account


@pytest.mark.parametrize("cron", ["* * * * *", "*/5 * * * *", "0,10 9 * * *"])
def test_a_cron_more_often_than_the_minimum_interval_is_422(
    client: TestClient, account: Account, cron: str
) -> None:
    body = {"name": "often", "cron": cron, "items": [{"title": "Mug"}]}
    answer = client.post("/v1/schedules", headers=account.headers, json=body)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["error"]["details"][0]
    assert detail["loc"] == "cron"
    assert "at most every 15 minutes" in detail["message"]


def test_run_now_during_a_run_is_409_and_makes_no_second_run(
    client: TestClient, account: Account, settings: Any
) -> None:
    from datetime import UTC, datetime

    from worker.schedules import claim_next, run_schedule

    body = {"name": "nightly", "cron": "0 2 * * *", "items": [{"title": "Mug"}]}
    schedule = client.post("/v1/schedules", headers=account.headers, json=body).json()
    path = f"/v1/schedules/{schedule['id']}/run"
    assert client.post(path, headers=account.headers).status_code == 202

    claimed = set(iter(lambda: claim_next(datetime.now(UTC)), None))
    assert schedule["id"] in {str(found) for found in claimed}
    # The run is in progress: asking again changes nothing and says why.
    for _ in range(4):
        again = client.post(path, headers=account.headers)
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "run_in_progress"
    assert str(claim_next(datetime.now(UTC)) or "") != schedule["id"]

    assert run_schedule(uuid.UUID(schedule["id"]), settings) is not None
    assert client.post(path, headers=account.headers).status_code == 202
    # Left due, it would be claimed by the worker tests' schedulers, which share the database.
    client.delete(f"/v1/schedules/{schedule['id']}", headers=account.headers)
