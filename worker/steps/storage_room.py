"""Room for a rendered video: the tenant's storage quota and this host's disk.

A render has been paid for when its video is downloaded, and a retry renders (and pays) again,
so a video that does not fit waits rather than fails: the download step runs again every
STORAGE_WAIT_INTERVAL_S (the render's URL is refreshed if it expired meanwhile) until there is
room, for at most STORAGE_WAIT_MAX_S; only then does the job fail, saying why. While it waits,
the job's `error_message` says what it waits for and what frees room.

The charge on the quota is one transaction with the checkpoint's `storage_charged` (fenced by
the claim's lease), so a step run twice charges once, and a lost lease charges nothing.
"""

from datetime import datetime

from core.db import autocommit, get_engine
from core.repo.jobs import utcnow
from core.repo.storage_usage import CHARGED, StorageUsage, charge, release, usage_of
from core.repo.transitions import LeaseLost, merge_checkpoint
from core.settings import get_settings
from worker.outcomes import Fail, Outcome, Wait
from worker.runner import StepContext

WAITING_SINCE = "storage_wait_since"


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def quota_words(usage: StorageUsage, size: int | None = None) -> str:
    what = f"the rendered video ({_mb(size)})" if size else "another rendered video"
    return (
        f"{what} does not fit the tenant's storage quota ({_mb(usage.used)} of "
        f"{_mb(usage.quota or 0)} used)"
    )


QUOTA_REMEDY = (
    "wait for the retention policy to delete old batches' videos, or ask the operator to "
    "raise the quota (`nemo-batch tenant set NAME --storage-quota`)"
)
DISK_WORDS = "the server's disk is full, so the rendered video cannot be stored yet"
DISK_REMEDY = "tell the operator to free disk space"


def usage_now(context: StepContext) -> StorageUsage:
    with autocommit() as connection:  # one read: no transaction around it
        return usage_of(connection, context.tenant_id, get_settings().storage_quota_bytes)


def charge_output(context: StepContext, total: int) -> None:
    """Charge the tenant for this job's output of `total` bytes (what it was charged before is
    counted off); `QuotaExceeded` with nothing changed if it does not fit."""
    previous = int(context.checkpoint.get(CHARGED) or 0)
    if context.lease is None:
        raise LeaseLost("a storage charge needs the claim's lease")
    with get_engine().begin() as connection:
        charge(connection, context.tenant_id, total - previous, get_settings().storage_quota_bytes)
        merge_checkpoint(connection, context.job_id, context.lease, {CHARGED: total})
    context.checkpoint[CHARGED] = total


def release_output(context: StepContext) -> None:
    """Give back what this job was charged for a video it will not keep."""
    previous = int(context.checkpoint.get(CHARGED) or 0)
    if previous <= 0 or context.lease is None:
        return
    with get_engine().begin() as connection:
        merge_checkpoint(connection, context.job_id, context.lease, {CHARGED: 0})
        release(connection, context.tenant_id, previous)
    context.checkpoint[CHARGED] = 0


def wait_for_room(
    context: StepContext,
    code: str,
    reason: str,
    remedy: str,
    *,
    lost: str = "The video was rendered but not stored",
    again: str = "it renders again",
) -> Outcome:
    """Wait for room (see the module's docstring), or fail `code` once waited long enough,
    saying what was `lost` and what a retry does `again`."""
    settings = get_settings()
    now = utcnow()
    since_text = context.checkpoint.get(WAITING_SINCE)
    since = datetime.fromisoformat(str(since_text)) if since_text else now
    waited = (now - since).total_seconds()
    if waited >= settings.storage_wait_max_s:
        release_output(context)
        return Fail(
            code,
            f"{lost}: {reason}, and no room came in {waited / 3600:.1f} hours "
            f"(STORAGE_WAIT_MAX_S). To get it, {remedy}, then retry the job ({again}).",
        )
    interval = settings.storage_wait_interval_s
    message = (
        f"Waiting for storage: {reason}. It goes on as soon as there is room (checked "
        f"every {interval / 60:g} minutes, for up to {settings.storage_wait_max_s / 3600:g} "
        f"hours); to make room, {remedy}."
    )
    return Wait(
        delay_s=interval,
        checkpoint={WAITING_SINCE: since.isoformat()},
        message=message,
        fields={"error_message": message},
    )


ROOM_FOUND = {"error_message": None}
"""What a step that found room clears on the job: the words of an earlier wait for room."""
ROOM_FOUND_CHECKPOINT = {WAITING_SINCE: None}
