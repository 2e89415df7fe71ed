"""Per-tenant storage quota: the bytes a tenant's assets and outputs take, kept as a counter on
its row and changed in the same transaction as the rows that add or drop them.

What is counted: each of the tenant's asset rows (one per distinct content: the same bytes
uploaded twice count once) and each of its jobs' stored video and poster. A content-addressed
object that several tenants (or jobs) hold is one file on disk, but each holder is charged its
size, as if it had its own copy: a tenant's usage never depends on what other tenants upload,
and never tells whether they hold the same file. Fetched copies of input URLs are the service's
own cache of what a job needs (deleted by RETENTION_DAYS), not the tenant's stored files.

A charge is one conditional UPDATE (`used + n <= quota`), so two uploads racing for the last
bytes of a quota cannot both pass.
"""

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Connection, bindparam, func, select, text
from sqlalchemy.orm import Session

from core.models import Asset, Job, Tenant

UNLIMITED = -1
"""`tenants.storage_quota_bytes` of a tenant the operator exempted from the default."""

_CHARGE = text(
    """
    UPDATE tenants SET storage_used_bytes = storage_used_bytes + :amount
    WHERE id = :tenant_id AND (
        :amount <= 0
        OR COALESCE(storage_quota_bytes, :default_quota) IS NULL
        OR COALESCE(storage_quota_bytes, :default_quota) < 0
        OR storage_used_bytes + :amount <= COALESCE(storage_quota_bytes, :default_quota))
    RETURNING storage_used_bytes
    """
).bindparams(bindparam("default_quota", type_=BigInteger), bindparam("amount", type_=BigInteger))

_RELEASE = text(
    "UPDATE tenants SET storage_used_bytes = GREATEST(storage_used_bytes - :amount, 0) "
    "WHERE id = :tenant_id"
)


@dataclass(frozen=True)
class StorageUsage:
    used: int
    quota: int | None
    """None: no limit."""

    def room_for(self, size: int) -> bool:
        return self.quota is None or self.used + size <= self.quota


class QuotaExceeded(Exception):
    """Storing `size` more bytes would take the tenant over its quota; nothing was charged."""

    def __init__(self, usage: StorageUsage, size: int) -> None:
        self.usage = usage
        self.size = size
        super().__init__(
            f"storing {size} more bytes would exceed the storage quota "
            f"({usage.used} of {usage.quota} bytes used)"
        )


def effective_quota(override: int | None, default: int | None) -> int | None:
    """The tenant's quota: its override, else the setting; None for no limit."""
    quota = override if override is not None else default
    return None if quota is None or quota < 0 else quota


_USAGE = select(Tenant.storage_used_bytes, Tenant.storage_quota_bytes).where(
    Tenant.id == bindparam("tenant_id")
)
"""Built once: read before every download and for every quota refusal."""


def usage_of(
    session: Session | Connection, tenant_id: uuid.UUID, default: int | None
) -> StorageUsage:
    row = session.execute(_USAGE, {"tenant_id": tenant_id}).one()
    return StorageUsage(int(row[0]), effective_quota(row[1], default))


def charge(
    session: Session | Connection, tenant_id: uuid.UUID, amount: int, default: int | None
) -> None:
    """Add `amount` bytes to the tenant's usage if they fit its quota (a negative amount always
    does); `QuotaExceeded` otherwise, with nothing changed. The caller commits."""
    if amount < 0:
        release(session, tenant_id, -amount)
    if amount <= 0:
        return
    used = session.execute(
        _CHARGE, {"amount": amount, "tenant_id": tenant_id, "default_quota": default}
    ).scalar()
    if used is None:  # the usage is read only to say, in the refusal, what is used
        raise QuotaExceeded(usage_of(session, tenant_id, default), amount)


def release(session: Session | Connection, tenant_id: uuid.UUID, amount: int) -> None:
    """Take `amount` bytes off the tenant's usage (files deleted); never below zero."""
    if amount > 0:
        session.execute(_RELEASE, {"amount": amount, "tenant_id": tenant_id})


def set_quota(session: Session, tenant: Tenant, quota: int | None) -> None:
    """The operator's override: bytes, `UNLIMITED`, or None to follow STORAGE_QUOTA_BYTES."""
    tenant.storage_quota_bytes = quota


def output_bytes(output: dict[str, Any] | None) -> int:
    """What a job's stored output is charged: video and poster (older rows: the video)."""
    if not output or not output.get("path"):
        return 0
    value = output.get("stored_bytes", output.get("size"))
    return int(value) if isinstance(value, int | float) else 0


CHARGED = "storage_charged"
"""The checkpoint key of what a job's output is charged (`worker.steps.storage_room`)."""


def job_charge(output: dict[str, Any] | None, checkpoint: dict[str, Any] | None) -> int:
    """What a job is charged: its checkpoint's charge (a stored video, or one reserved while
    it waits for disk space), else (older jobs) its stored output's size."""
    charged = (checkpoint or {}).get(CHARGED)
    if isinstance(charged, int):
        return charged
    return output_bytes(output)


def recount(session: Session, tenant_id: uuid.UUID) -> int:
    """Count the tenant's usage again from its rows (after a crash between a file's deletion
    and its release, or by an operator's hand); stores and returns it."""
    assets = session.scalar(
        select(func.coalesce(func.sum(Asset.size), 0)).where(Asset.tenant_id == tenant_id)
    )
    charged = Job.checkpoint.has_key(CHARGED) | Job.output.has_key("path")
    outputs = sum(
        job_charge(output, checkpoint)
        for output, checkpoint in session.execute(
            select(Job.output, Job.checkpoint).where(Job.tenant_id == tenant_id, charged)
        )
    )
    total = int(assets or 0) + outputs
    tenant = session.get(Tenant, tenant_id, with_for_update=True)
    assert tenant is not None
    tenant.storage_used_bytes = total
    return total
