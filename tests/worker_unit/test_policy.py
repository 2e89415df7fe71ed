"""The error policy table of DESIGN.md: each backend signal gets its documented outcome."""

import pytest

from core.states import JobState
from worker.nemo import errors
from worker.outcomes import Backoff, Fail, Restart, WaitCredits
from worker.policy import Attempt, backoff_delay, outcome_for


@pytest.fixture(autouse=True)
def _defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import get_settings

    monkeypatch.setenv("RETRY_BASE_DELAY_S", "30")
    monkeypatch.setenv("MAX_STEP_ATTEMPTS", "5")
    get_settings.cache_clear()


FIRST_TRY = Attempt(JobState.UPLOAD, 1)


def test_rate_limit_honours_retry_after_with_jitter() -> None:
    outcome = outcome_for(errors.RateLimited("slow down", retry_after=12.0), FIRST_TRY)
    assert isinstance(outcome, Backoff)
    assert 12.0 <= outcome.delay_s <= 12.0 * 1.2
    assert outcome.code == "rate_limited"


def test_rate_limit_without_retry_after_waits_about_thirty_seconds_then_longer() -> None:
    first = backoff_delay(1)
    third = backoff_delay(3)
    assert 24 <= first <= 36
    assert third > first * 2


def test_session_lost_restarts_from_a_new_session_and_forgets_the_old_one() -> None:
    outcome = outcome_for(errors.SessionLost("gone"), Attempt(JobState.PROMPT, 1))
    assert isinstance(outcome, Restart)
    assert outcome.to == JobState.SESSION
    assert {"session_id", "uploads", "messages"} <= set(outcome.clear)


def test_out_of_credits_waits_for_credits_and_keeps_the_registration_link() -> None:
    link = "https://nemovideo.com/register?bind=anon_1"
    outcome = outcome_for(errors.OutOfCredits("no credits", bind_url=link), FIRST_TRY)
    assert isinstance(outcome, WaitCredits)
    assert outcome.bind_url == link
    assert link in outcome.message


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.UnsupportedMedia("bad type"), "unsupported_media"),
        (errors.MediaTooLarge("too big"), "media_too_large"),
        (errors.ExportBlocked("plan"), "export_blocked"),
    ],
)
def test_permanent_backend_refusals_fail_the_job_with_advice(
    error: errors.NemoError, code: str
) -> None:
    outcome = outcome_for(error, FIRST_TRY)
    assert isinstance(outcome, Fail)
    assert outcome.code == code
    assert len(outcome.message) > 20


def test_network_errors_retry_until_the_attempt_limit_then_fail() -> None:
    error = errors.BackendUnavailable("connection refused")
    assert isinstance(outcome_for(error, Attempt(JobState.SESSION, 4)), Backoff)
    final = outcome_for(error, Attempt(JobState.SESSION, 5))
    assert isinstance(final, Fail)
    assert final.code == "backend_unavailable"
    assert "5 attempts" in final.message


def test_our_own_pacing_is_a_short_spread_wait_not_a_backend_429() -> None:
    outcome = outcome_for(
        errors.RateLimited("no slot", retry_after=2.0, http_status=None), FIRST_TRY
    )
    assert isinstance(outcome, Backoff)
    assert outcome.code == "paced"
    assert outcome.http_status is None
    assert 2.0 <= outcome.delay_s <= 2.0 + 30
    assert "429" not in outcome.message


def test_the_policy_reads_the_errors_description_not_its_message_text() -> None:
    # The server's own words may contain anything, the client's advice marker included.
    error = errors.MediaTooLarge(
        "The backend refused the file", http_status=413, server_message="Too big. What to do: x"
    )
    outcome = outcome_for(error, FIRST_TRY)
    assert isinstance(outcome, Fail)
    assert outcome.message.startswith(error.description)
    assert "Too big. What to do: x" in outcome.message
    assert "What to do: " + error.advice not in outcome.message
