"""Every setting of nemo-batch, read from the environment (or a `.env` file)."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, computed_field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Typed settings; defaults work on a developer machine with local Postgres and Redis."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/nemo_batch"
    redis_url: str = "redis://127.0.0.1:6379/0"
    storage_dir: Path = Path("./var/storage")
    """This host's folder: every object with `file://` storage, temporary files always."""
    storage_url: str = ""
    """`file:///path` (the default: STORAGE_DIR) or `s3://bucket/prefix` for an S3-compatible
    store reached with the AWS_* settings below."""
    aws_endpoint_url: str | None = None
    aws_access_key_id: str | None = Field(default=None, repr=False)
    aws_secret_access_key: str | None = Field(default=None, repr=False)
    aws_region: str | None = None
    storage_public_endpoint_url: str | None = None
    """The S3 endpoint as API clients reach it, for presigned URLs (default AWS_ENDPOINT_URL)."""
    storage_redirect_ttl_s: int = 300
    """How long a presigned URL answered by `?redirect=1` stays valid."""

    # The backend.
    nemo_api_base: str = "http://127.0.0.1:8700"
    nemo_token: str | None = Field(default=None, repr=False)
    nemo_skill_source: str = "video-generator-ki-free"
    nemo_skill_version: str = "1.0.0"
    nemo_skill_platform: str = "unknown"
    nemo_rate_limit_rps: float = 10.0
    nemo_rate_limit_burst: int = 10
    nemo_poll_interval_s: float = 30.0
    nemo_stream_deadline_s: float = 900.0
    nemo_request_timeout_s: float = 60.0
    nemo_generation_cost: int = 100
    nemo_edit_cost: int = 50
    nemo_token_refresh_max_s: float = 900.0
    """How long the shared anonymous token may keep being refused, re-acquired again and
    again, before a job fails `token_invalid`."""
    nemo_throttle_max_s: float = 6 * 3600.0
    """How long a job may wait on 429s before it fails `rate_limited`."""

    # Pipeline limits.
    default_inflight_limit: int = 50
    max_step_attempts: int = 5
    retry_base_delay_s: float = 30.0
    retry_max_delay_s: float = 900.0
    render_timeout_s: float = 1800.0
    verify_timeout_s: float = 300.0
    verify_poll_interval_s: float = 10.0
    step_lease_s: float = 60.0
    heartbeat_stale_s: float = 300.0
    sweep_interval_s: float = 30.0
    claim_interval_s: float = 2.0
    credits_check_interval_s: float = 60.0
    credits_cache_s: float = 30.0
    """How old a stored backend balance may be for the batch preflight to use it unread."""
    # A worker's own watchdog (worker/watchdog.py): it checks every `worker_heartbeat_s`,
    # touching its heartbeat file while healthy, and exits after `worker_stall_s` unable to
    # consume; a supervisor replaces a worker whose heartbeat is older than `worker_stale_s`.
    worker_heartbeat_s: float = 5.0
    worker_stall_s: float = 120.0
    worker_stale_s: float = 60.0

    # Intake limits.
    max_upload_bytes: int = 200 * 1024 * 1024
    max_batch_items: int = 10_000
    max_request_bytes: int = 64 * 1024 * 1024
    allow_private_urls: bool = False
    # Per tenant, across API processes (api/write_limits.py): writes a minute, the burst
    # allowed above that pace, and writes running at once.
    write_rate_per_minute: int = Field(default=120, ge=1)
    write_burst: int = Field(default=120, ge=1)
    write_concurrency: int = Field(default=4, ge=1)

    # Every Celery task's soft and hard time limit, unless worker.celery_app sets its own.
    task_soft_time_limit_s: float = 600.0
    task_time_limit_s: float = 660.0

    # Schedules: how often beat looks for due ones, and fetching their feeds and media.
    schedule_check_interval_s: float = 15.0
    schedule_min_interval_s: float = 900.0
    """Cron expressions that run more often than this are refused."""
    schedule_run_deadline_s: float = 900.0
    """How long one beat pass of due schedules (feeds, media fingerprints) may take."""
    feed_timeout_s: float = 60.0
    feed_fetch_concurrency: int = 8

    # Webhooks and Flower.
    webhook_timeout_s: float = 10.0
    """The whole of one webhook try: connect, send, the answer's status and first 4 KiB."""
    webhook_max_age_s: float = 24 * 3600
    webhook_retry_base_s: float = 30.0
    webhook_retry_max_delay_s: float = 4 * 3600
    flower_user: str = "admin"
    flower_password: str | None = Field(default=None, repr=False)
    """No default: Flower can shut workers down and revoke tasks, so it never runs without one."""
    metrics_token: str | None = Field(default=None, repr=False)
    """What a scraper sends as `Authorization: Bearer ...` to `/metrics`; unset, it is closed."""
    metrics_tenant_names: bool = False
    """Label per-tenant series (credits of a tenant's own backend account) by tenant name;
    otherwise they are left out and only the shared account is shown."""

    # The command-line client (`nemo-batch submit|status|download`).
    nemo_batch_api_url: str = "http://127.0.0.1:8000"
    nemo_batch_api_key: str | None = Field(default=None, repr=False)

    # Database sessions: a statement, or a transaction left idle, is ended after this long;
    # a request waits this long for a pooled connection (pools: core/pools.py).
    db_statement_timeout_s: float = 120.0
    db_idle_in_transaction_timeout_s: float = 900.0
    db_pool_timeout_s: float = 30.0

    retention_days: float | None = Field(default=None, gt=0)
    """Job events, finished webhook deliveries, the videos and posters of jobs finished longer
    ago, and asset files no job within it uses are deleted (unset: everything is kept)."""
    storage_quota_bytes: int | None = Field(default=None, ge=0)
    """What one tenant's assets and outputs may take (unset: no limit); `nemo-batch tenant set
    NAME --storage-quota` overrides it per tenant."""
    storage_wait_max_s: float = 24 * 3600.0
    """How long a rendered video waits for room (the tenant over its quota, or a full disk)
    before its job fails saying why; it is checked again every STORAGE_WAIT_INTERVAL_S."""
    storage_wait_interval_s: float = 300.0
    retention_check_interval_s: float = 3600.0

    log_level: str = "INFO"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def assets_dir(self) -> Path:
        return self.storage_dir / "assets"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def outputs_dir(self) -> Path:
        return self.storage_dir / "outputs"


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
