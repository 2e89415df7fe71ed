"""The beat's frequent housekeeping as one task: due waits, due webhook retries, admission.

Three tasks every couple of seconds drowned the pipeline's steps in Flower (61 housekeeping tasks
beside 71 step tasks in a minute of a 6-job batch); one `worker.tick` does the three in turn.
The slower passes (sweep, credits, schedules) keep tasks of their own, a few a minute.
"""

import logging
from collections.abc import Callable

from worker import admission, recovery, webhooks

log = logging.getLogger("worker.housekeeping")

PASSES: tuple[tuple[str, Callable[[], int]], ...] = (
    ("claim_due", recovery.claim_due),
    ("claim_webhooks", webhooks.claim_due),
    ("dispatch", admission.dispatch),
)
"""In this order: a wait that is over goes on before new jobs are admitted beside it."""


def tick() -> dict[str, int]:
    """Run every pass; one that fails is logged and does not keep the others from running."""
    done: dict[str, int] = {}
    for name, run in PASSES:
        try:
            done[name] = run()
        except Exception:
            log.exception("the %s pass failed; the next tick tries again", name)
            done[name] = -1
    return done
