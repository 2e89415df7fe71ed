"""The one owner of a job's state: every change of `jobs.state`, and what follows a final state.

Fencing: a claim hands the worker a fresh lease token; every write of that worker (its outcome,
checkpoint saves, lease renewals) carries it, and a write whose token is no longer current
changes nothing, is logged and dropped. Cancel and retry clear the lease.

Lock order: job rows first (several at once in id order), then their tenant, then their batch.
Every function here keeps it, so two of them never wait on each other in a circle.

Nothing outside this package writes a job's state (tests/core/test_state_owner.py). Its modules:
`base` (tables, the fencing error, event rows), `locked` (a job locked in the caller's session),
`statements` (the hot path's set-based statements), `bulk` (many jobs at once).
"""

from core.repo.transitions.base import (
    FINAL_VALUES,
    JOB_EVENTS,
    JOBS,
    NO_LEASE,
    LeaseLost,
    add_event,
    event_row,
    state_event,
)
from core.repo.transitions.bulk import (
    cancel_batch,
    credit_waiters_due,
    redrive_stale,
    resume_batch,
    retry_failed,
)
from core.repo.transitions.locked import (
    Canceled,
    admit,
    after_final,
    back_off,
    cancel_job,
    give_back_attempt,
    leased_job,
    resume_due,
    retry_job,
    set_fields,
    transition,
    wait,
    wait_for_credits,
)
from core.repo.transitions.statements import (
    Claim,
    advance_to_next_step,
    claim_step,
    extend_leases,
    locked_job,
    merge_checkpoint,
    merge_queued_checkpoint,
)

__all__ = [
    "FINAL_VALUES",
    "JOBS",
    "JOB_EVENTS",
    "NO_LEASE",
    "Canceled",
    "Claim",
    "LeaseLost",
    "add_event",
    "admit",
    "advance_to_next_step",
    "after_final",
    "back_off",
    "cancel_batch",
    "cancel_job",
    "claim_step",
    "credit_waiters_due",
    "event_row",
    "extend_leases",
    "give_back_attempt",
    "leased_job",
    "locked_job",
    "merge_checkpoint",
    "merge_queued_checkpoint",
    "redrive_stale",
    "resume_batch",
    "resume_due",
    "retry_failed",
    "retry_job",
    "set_fields",
    "state_event",
    "transition",
    "wait",
    "wait_for_credits",
]
