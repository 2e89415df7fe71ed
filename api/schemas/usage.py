"""What the tenant's stored files take against its storage quota."""

from pydantic import BaseModel, Field


class UsageOut(BaseModel):
    storage_used_bytes: int = Field(
        description="What the tenant's assets and stored videos and posters take."
    )
    storage_quota_bytes: int | None = Field(
        description="The most they may take; null: no limit. Uploads beyond it answer 413 "
        "`storage_quota_exceeded`, and a rendered video waits for room before it is stored."
    )
    storage_free_bytes: int | None = Field(description="Room left; null: no limit.")
    retention_days: float | None = Field(
        description="Videos of jobs finished longer ago, and assets no recent job uses, are "
        "deleted after this many days; null: kept."
    )
