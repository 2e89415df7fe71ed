"""The job state machine of DESIGN.md, as data. Its one writer, `core.repo.transitions`, checks
every edge it takes against `TRANSITIONS` (the set-based cancel and retry take only edges the
table allows from every state they match)."""

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"
    ADMITTED = "admitted"
    TOKEN = "token"
    FETCH = "fetch"
    SESSION = "session"
    UPLOAD = "upload"
    PROMPT = "prompt"
    EXPORT = "export"
    RENDER = "render"
    DOWNLOAD = "download"
    RETRY_WAIT = "retry_wait"
    WAITING_CREDITS = "waiting_credits"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class BatchStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    FAILED = "failed"
    CANCELED = "canceled"


PIPELINE: tuple[JobState, ...] = (
    JobState.ADMITTED,
    JobState.TOKEN,
    JobState.FETCH,
    JobState.SESSION,
    JobState.UPLOAD,
    JobState.PROMPT,
    JobState.EXPORT,
    JobState.RENDER,
    JobState.DOWNLOAD,
)
"""The running states, in pipeline order."""

RUNNING: frozenset[JobState] = frozenset(PIPELINE)
FINAL: frozenset[JobState] = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED})
WAITING: frozenset[JobState] = frozenset({JobState.RETRY_WAIT, JobState.WAITING_CREDITS})
ACTIVE: frozenset[JobState] = RUNNING | WAITING
"""States that count against a tenant's in-flight limit."""


def _allowed() -> dict[JobState, frozenset[JobState]]:
    allowed: dict[JobState, set[JobState]] = {state: set() for state in JobState}
    allowed[JobState.QUEUED] = {JobState.ADMITTED}
    for current, following in zip(PIPELINE, (*PIPELINE[1:], JobState.SUCCEEDED), strict=True):
        allowed[current].add(following)
    for state in RUNNING:
        # A re-driven step may start over in its own state; waits return to any running state
        # (a lost session goes back to `session`).
        allowed[state] |= {state, JobState.RETRY_WAIT, JobState.WAITING_CREDITS}
    for state in WAITING:
        allowed[state] |= set(RUNNING) | {state}
    for state in JobState:
        if state not in FINAL:
            allowed[state] |= {JobState.FAILED, JobState.CANCELED}
    # A running job may go back to an earlier step (session lost: new session, uploads replayed).
    for state in RUNNING:
        allowed[state] |= set(RUNNING)
    # Retry of a failed or canceled job starts it over from the queue.
    allowed[JobState.FAILED].add(JobState.QUEUED)
    allowed[JobState.CANCELED].add(JobState.QUEUED)
    return {state: frozenset(targets) for state, targets in allowed.items()}


TRANSITIONS: dict[JobState, frozenset[JobState]] = _allowed()


class IllegalTransition(ValueError):
    """A writer tried to move a job along an edge the state machine does not have."""

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"a job in state {current!r} cannot move to {target!r}")
        self.current = current
        self.target = target


def can_transition(current: str, target: str) -> bool:
    return JobState(target) in TRANSITIONS[JobState(current)]


def check_transition(current: str, target: str) -> JobState:
    """Return the target state, or raise `IllegalTransition`."""
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
    return JobState(target)


def next_step(state: str) -> JobState:
    """The state that follows a running state in the pipeline."""
    index = PIPELINE.index(JobState(state))
    return PIPELINE[index + 1] if index + 1 < len(PIPELINE) else JobState.SUCCEEDED
