"""What a step asks the runner to do with its job once the step function returns."""

from dataclasses import dataclass, field
from typing import Any

from core.states import JobState


@dataclass(frozen=True)
class Advance:
    """The step is done: record its checkpoint and move on to `to` (the next step by default)."""

    checkpoint: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    to: JobState | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    """Other job columns to set (output, timeline_summary)."""
    next_in_s: float | None = None
    """The next step is due this many seconds from now, not at once (a render is not worth
    polling before it can be done): the chain stops here and the claimer sends the job on."""


@dataclass(frozen=True)
class Wait:
    """Nothing to do yet (render pending, state not changed yet): run this step again later."""

    delay_s: float
    checkpoint: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    """Other job columns to set (`error_message`: why it waits, in words)."""


@dataclass(frozen=True)
class Restart:
    """Go back to an earlier step (a lost session, a re-export after a failed render)."""

    to: JobState
    checkpoint: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    clear: tuple[str, ...] = ()
    """Checkpoint keys to forget."""


@dataclass(frozen=True)
class Backoff:
    """A transient failure: `retry_wait`, then the same step after `delay_s`."""

    delay_s: float
    code: str
    message: str
    http_status: int | None = None
    backend_code: int | None = None


@dataclass(frozen=True)
class WaitCredits:
    """The backend is out of credits: park the job and pause its tenant."""

    message: str
    bind_url: str | None = None


@dataclass(frozen=True)
class Fail:
    code: str
    message: str
    http_status: int | None = None
    backend_code: int | None = None


Outcome = Advance | Wait | Restart | Backoff | WaitCredits | Fail
