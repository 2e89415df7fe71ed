"""A batch's products as the web page's grid shows them: a page at a time, in item order."""

import uuid

from pydantic import BaseModel, Field

from core.states import JobState


class ProductOut(BaseModel):
    job_id: uuid.UUID
    item_index: int
    ref: str | None
    title: str | None
    state: JobState
    state_text: str = Field(description="The state in words: `Rendering`, `Ready`, `Failed`.")
    error_code: str | None
    error_message: str | None
    advice: str | None = Field(description="What to do about a failure or a wait.")
    video_url: str | None
    poster_url: str | None
    duration_s: float | None


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None
