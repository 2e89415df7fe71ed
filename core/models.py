"""SQLAlchemy 2 typed models: the whole schema, changed only through Alembic migrations."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from core.states import BatchStatus, JobState

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Json = dict[str, Any]


class JobStateType(TypeDecorator[JobState]):
    """A job state stored as its name (VARCHAR(32)) and read back as a `JobState`: a value that
    is not a state is refused on the way in, never found on the way out."""

    impl = String(32)
    cache_ok = True

    def process_bind_param(self, value: JobState | str | None, dialect: Dialect) -> str | None:
        return None if value is None else JobState(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> JobState | None:
        return None if value is None else JobState(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {Json: JSONB, datetime: DateTime(timezone=True)}  # noqa: RUF012 (SQLAlchemy reads it as a plain class attribute)


def _uuid() -> uuid.UUID:
    return uuid.uuid4()


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Installation(Base):
    """One row: this installation's backend client id (the contract wants one per install)."""

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    client_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Tenant(TimestampMixin, Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    inflight_limit: Mapped[int] = mapped_column(Integer, default=50)
    backend_token: Mapped[str | None] = mapped_column(Text, default=None)
    webhook_secret: Mapped[str] = mapped_column(String(100))
    previous_webhook_secret: Mapped[str | None] = mapped_column(String(100), default=None)
    """Still signs beside the new one until `previous_webhook_secret_until` (a rotation)."""
    previous_webhook_secret_until: Mapped[datetime | None] = mapped_column(default=None)
    paused_reason: Mapped[str | None] = mapped_column(Text, default=None)
    paused_at: Mapped[datetime | None] = mapped_column(default=None)
    storage_quota_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """The operator's override of STORAGE_QUOTA_BYTES: None follows the setting, a negative
    value means no limit (`core.repo.storage_usage`)."""
    storage_used_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """What the tenant's assets and outputs take, kept in the same transaction as the rows
    that add or drop them (`core.repo.storage_usage`)."""


class ApiKey(TimestampMixin, Base):
    """An API key, stored as its sha256; the key itself is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Asset(TimestampMixin, Base):
    __tablename__ = "assets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sha256", name="uq_assets_tenant_sha256"),
        Index("ix_assets_created", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    """image, video or audio."""
    extension: Mapped[str] = mapped_column(String(16))
    content_type: Mapped[str] = mapped_column(String(100))
    filename: Mapped[str] = mapped_column(String(500))
    path: Mapped[str] = mapped_column(Text)


class Schedule(TimestampMixin, Base):
    __tablename__ = "schedules"
    __table_args__ = (Index("ix_schedules_due", "enabled", "next_run_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    cron: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    source_url: Mapped[str | None] = mapped_column(Text, default=None)
    items: Mapped[list[Any] | None] = mapped_column(JSONB, default=None)
    prompt_template: Mapped[str | None] = mapped_column(Text, default=None)
    options: Mapped[Json] = mapped_column(default=dict)
    webhook_url: Mapped[str | None] = mapped_column(Text, default=None)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime | None] = mapped_column(default=None)
    last_run_at: Mapped[datetime | None] = mapped_column(default=None)
    last_batch_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_outcome: Mapped[str | None] = mapped_column(Text, default=None)
    running_until: Mapped[datetime | None] = mapped_column(default=None)
    """Set while a run is in progress (its claim's lease): no second run starts meanwhile."""
    """What the last run did, in words: the batch it made, or why it made none."""


class Batch(TimestampMixin, Base):
    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_batches_tenant_idempotency"),
        Index("ix_batches_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_batches_status", "status"),
        Index("ix_batches_schedule", "schedule_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("schedules.id", ondelete="SET NULL"), default=None
    )
    name: Mapped[str] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(Integer, default=5)
    prompt_template: Mapped[str] = mapped_column(Text)
    webhook_url: Mapped[str | None] = mapped_column(Text, default=None)
    options: Mapped[Json] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(32), default=BatchStatus.QUEUED.value)
    item_count: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    warning: Mapped[str | None] = mapped_column(Text, default=None)
    estimated_credits: Mapped[int | None] = mapped_column(Integer, default=None)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Job(TimestampMixin, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_batch_state", "batch_id", "state"),
        Index("ix_jobs_batch_index", "batch_id", "item_index"),
        Index("ix_jobs_tenant_state", "tenant_id", "state"),
        Index("ix_jobs_admission", "state", "priority", "created_at"),
        Index("ix_jobs_due", "next_attempt_at", postgresql_where="next_attempt_at IS NOT NULL"),
        Index("ix_jobs_heartbeat", "state", "heartbeat_at"),
        Index("ix_jobs_output_finished", "finished_at", postgresql_where="output IS NOT NULL"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    item_index: Mapped[int] = mapped_column(Integer)
    ref: Mapped[str | None] = mapped_column(String(500), default=None)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    input: Mapped[Json] = mapped_column(default=dict)
    """The product: title, description, images, clips, music, prompt, messages."""
    options: Mapped[Json] = mapped_column(default=dict)
    input_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    product_fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)
    """A scheduled product's sha256 over its text, options and media bytes (not URLs)."""
    state: Mapped[JobState] = mapped_column(JobStateType(), default=JobState.QUEUED)
    resume_state: Mapped[JobState | None] = mapped_column(JobStateType(), default=None)
    """The running state a waiting job returns to."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    step_attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    bind_url: Mapped[str | None] = mapped_column(Text, default=None)
    checkpoint: Mapped[Json] = mapped_column(default=dict)
    """Per-step results: session, uploads, draft hashes, render id, ..."""
    output: Mapped[Json | None] = mapped_column(default=None)
    timeline_summary: Mapped[str | None] = mapped_column(Text, default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    throttled_since: Mapped[datetime | None] = mapped_column(default=None)
    """Since when the job has been waiting on the backend's 429s; None when it is not."""
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    """While in the future, one worker owns the job's current step."""
    lease_token: Mapped[uuid.UUID | None] = mapped_column(default=None)
    """The fencing token of the current lease: each claim makes a new one, and a worker's write
    that carries another changes nothing (`core.repo.transitions`)."""
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class JobEvent(Base):
    """One thing that happened to a job: a step done, a backend call, an error."""

    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    step: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text, default=None)
    http_status: Mapped[int | None] = mapped_column(Integer, default=None)
    backend_code: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    data: Mapped[Json | None] = mapped_column(default=None)


class WebhookDelivery(TimestampMixin, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_batch", "batch_id", "created_at"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=_uuid)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    job_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    event: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[Json] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class CreditBalance(Base):
    """The balance the workers last saw, per backend account (shared or a tenant's own)."""

    __tablename__ = "credit_balances"

    account: Mapped[str] = mapped_column(String(100), primary_key=True)
    available: Mapped[int] = mapped_column(BigInteger)
    frozen: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger)
    seen_at: Mapped[datetime] = mapped_column(server_default=func.now())


__all__ = [
    "ApiKey",
    "Asset",
    "Base",
    "Batch",
    "CreditBalance",
    "Installation",
    "Job",
    "JobEvent",
    "Schedule",
    "Tenant",
    "WebhookDelivery",
]
