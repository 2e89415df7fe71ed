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

    # Schedules: how often beat looks for due ones, and fetching their feeds and media.
    schedule_check_interval_s: float = 15.0
    feed_timeout_s: float = 60.0
    feed_fetch_concurrency: int = 8

    # Webhooks and Flower.
    webhook_timeout_s: float = 10.0
    webhook_max_age_s: float = 24 * 3600
    webhook_retry_base_s: float = 30.0
    webhook_retry_max_delay_s: float = 4 * 3600
    flower_user: str = "admin"
    flower_password: str = Field(default="change-me", repr=False)

    # The command-line client (`nemo-batch submit|status|download`).
    nemo_batch_api_url: str = "http://127.0.0.1:8000"
    nemo_batch_api_key: str | None = Field(default=None, repr=False)

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
