"""A batch's manifest: one row per product, the file a shop imports back."""

import uuid

from pydantic import BaseModel, Field

from core.states import BatchStatus, JobState

MANIFEST_COLUMNS = (
    "item_index",
    "ref",
    "title",
    "state",
    "error_code",
    "error_message",
    "video_url",
    "poster_url",
    "duration_s",
    "size",
    "sha256",
)
"""The CSV's header, in order; the JSON rows have the same fields."""


class ManifestRow(BaseModel):
    item_index: int
    ref: str | None
    title: str | None
    state: JobState
    error_code: str | None
    error_message: str | None
    video_url: str | None = Field(description="Absolute; download it with the API key.")
    poster_url: str | None
    duration_s: float | None
    size: int | None = Field(description="The MP4's size in bytes.")
    sha256: str | None = Field(description="The MP4's sha256, to check a download.")


class ManifestOut(BaseModel):
    batch_id: uuid.UUID
    name: str
    status: BatchStatus
    items: list[ManifestRow] = Field(description="Every job of the batch, in item order.")
