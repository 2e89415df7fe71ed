"""The backend error policy of DESIGN.md as one table: a signal in, an outcome out.

Steps never decide how to react to a backend error; they raise, and `outcome_for` looks the
error up here. Token refresh (1001) happens in the runner, which re-acquires the shared
anonymous token and retries, backing off while it keeps being refused, for a bounded time.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass

from core.settings import get_settings
from core.states import JobState
from worker.nemo import errors
from worker.outcomes import Backoff, Fail, Outcome, Restart, WaitCredits


@dataclass(frozen=True)
class Attempt:
    """What the policy needs to know about the failed try."""

    step: JobState
    step_attempts: int


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """Retry-After when given, else the base delay doubled per attempt; both with jitter."""
    settings = get_settings()
    if retry_after is not None and retry_after > 0:
        return retry_after * random.uniform(1.0, 1.2)
    exponential = settings.retry_base_delay_s * 2 ** max(0, attempt - 1)
    return min(settings.retry_max_delay_s, exponential) * random.uniform(0.8, 1.2)


def _rate_limited(error: errors.NemoError, attempt: Attempt) -> Outcome:
    retry_after = getattr(error, "retry_after", None)
    if error.http_status is None:
        # Our own shared pacing had no slot: spread the waiting jobs over the next few seconds
        # instead of waking them all at once.
        delay = (retry_after or 0.0) + random.uniform(0, get_settings().retry_base_delay_s)
        return Backoff(
            delay,
            "paced",
            "Waiting for a request slot under the backend's rate limit (NEMO_RATE_LIMIT_RPS).",
        )
    return Backoff(
        backoff_delay(attempt.step_attempts, retry_after),
        "rate_limited",
        "The backend asked us to slow down (HTTP 429); the step will be retried.",
        http_status=429,
    )


def _described(error: errors.NemoError) -> str:
    """What happened, without the client's advice to the caller (the policy gives the user's)."""
    return str(error).partition(". What to do: ")[0].rstrip(". ")


def _transient(code: str, what: str) -> Callable[[errors.NemoError, Attempt], Outcome]:
    def outcome(error: errors.NemoError, attempt: Attempt) -> Outcome:
        if attempt.step_attempts >= get_settings().max_step_attempts:
            return Fail(
                code,
                f"{what} after {attempt.step_attempts} attempts ({_described(error)}). "
                "Check that the backend is reachable, then retry the job.",
                http_status=error.http_status,
                backend_code=error.code,
            )
        return Backoff(
            backoff_delay(attempt.step_attempts),
            code,
            f"{what} ({_described(error)}); the step will be retried.",
            http_status=error.http_status,
            backend_code=error.code,
        )

    return outcome


def _fail(code: str, advice: str) -> Callable[[errors.NemoError, Attempt], Outcome]:
    def outcome(error: errors.NemoError, attempt: Attempt) -> Outcome:
        return Fail(
            code,
            f"{_described(error)}. {advice}".strip(),
            http_status=error.http_status,
            backend_code=error.code,
        )

    return outcome


def _session_lost(error: errors.NemoError, attempt: Attempt) -> Outcome:
    if attempt.step_attempts >= get_settings().max_step_attempts:
        return _fail("session_lost", "The backend kept losing the session; retry the job.")(
            error, attempt
        )
    return Restart(
        JobState.SESSION,
        message="The backend lost the session; starting a new one and uploading the media again.",
        clear=("session_id", "task_id", "uploads", "messages", "draft_hash", "timeline"),
    )


def _out_of_credits(error: errors.NemoError, attempt: Attempt) -> Outcome:
    bind_url = getattr(error, "bind_url", None)
    advice = (
        "The backend account is out of credits. Add credits (or register the anonymous user at "
        f"{bind_url})"
        if bind_url
        else "The backend account is out of credits. Add credits"
    )
    return WaitCredits(
        f"{advice}; the job resumes by itself when credits are back, or when you resume the batch.",
        bind_url=bind_url,
    )


POLICY: dict[type[errors.NemoError], Callable[[errors.NemoError, Attempt], Outcome]] = {
    errors.RateLimited: _rate_limited,
    errors.SessionLost: _session_lost,
    errors.OutOfCredits: _out_of_credits,
    errors.UnsupportedMedia: _fail(
        "unsupported_media",
        "Use mp4, mov, avi, webm, mkv, jpg, png, gif, webp, mp3, wav, m4a or aac.",
    ),
    errors.MediaTooLarge: _fail("media_too_large", "Trim or compress the file below 200 MB."),
    errors.ExportBlocked: _fail(
        "export_blocked",
        "The backend refused the export for this account's plan (HTTP 402, not credits).",
    ),
    errors.TokenInvalid: _fail(
        "token_invalid",
        "The backend token was refused. Set a valid registered token (NEMO_TOKEN or the "
        "tenant's own) and retry.",
    ),
    errors.BackendUnavailable: _transient("backend_unavailable", "The backend did not answer"),
    errors.ProtocolError: _transient("protocol_error", "The backend's answer was not understood"),
    errors.ClientIdMissing: _transient("client_id_refused", "The backend refused our client id"),
}


def outcome_for(error: errors.NemoError, attempt: Attempt) -> Outcome:
    """Look the error up by its most specific class in the table."""
    for cls in type(error).__mro__:
        handler = POLICY.get(cls)
        if handler is not None:
            return handler(error, attempt)
    if isinstance(error, errors.PermanentError):
        return _fail("request_rejected", "Check the job's input, then retry it.")(error, attempt)
    return _transient("backend_error", "The backend answered with an error")(error, attempt)
