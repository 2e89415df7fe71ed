"""The beat's one tick runs every housekeeping pass, in order, whatever one of them does."""

from collections.abc import Callable

import pytest

from worker import housekeeping
from worker.celery_app import _beat_schedule


def test_a_failing_pass_does_not_keep_the_others_from_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[str] = []

    def counting(name: str, count: int) -> Callable[[], int]:
        def run() -> int:
            ran.append(name)
            return count

        return run

    def broken() -> int:
        ran.append("claim_webhooks")
        raise ConnectionError("postgres went away")

    passes = (
        ("claim_due", counting("claim_due", 3)),
        ("claim_webhooks", broken),
        ("dispatch", counting("dispatch", 2)),
    )
    monkeypatch.setattr(housekeeping, "PASSES", passes)

    assert housekeeping.tick() == {"claim_due": 3, "claim_webhooks": -1, "dispatch": 2}
    assert ran == ["claim_due", "claim_webhooks", "dispatch"]


def test_beat_sends_one_tick_for_the_frequent_passes() -> None:
    tasks = [entry["task"] for entry in _beat_schedule().values()]
    assert tasks.count("worker.tick") == 1
    assert not {"worker.claim_due", "worker.claim_webhooks", "worker.dispatch"} & set(tasks)
    assert [name for name, _ in housekeeping.PASSES] == ["claim_due", "claim_webhooks", "dispatch"]
