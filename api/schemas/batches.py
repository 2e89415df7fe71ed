"""Batch creation input (JSON and CSV share it) and the batch answers."""

import ipaddress
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
)

from core.prompts import DEFAULT_TEMPLATE, TemplateError, check_template

AspectRatio = Literal["9:16", "16:9", "1:1"]
Language = Annotated[
    str, Field(min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
]
DurationS = Annotated[int, Field(ge=5, le=120)]


def _is_private_host(host: str) -> bool:
    if host in {"localhost", "localhost.localdomain"} or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not address.is_global


def check_url(value: str, *, allow_private: bool = False) -> str:
    """An absolute http(s) URL with a host; literal private addresses refused unless allowed."""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    if not allow_private and _is_private_host(parts.hostname):
        raise ValueError(f"refers to a private address ({parts.hostname}), which is not allowed")
    return value


def _allow_private(info: ValidationInfo) -> bool:
    context = info.context or {}
    return bool(context.get("allow_private_urls", False))


def _media_ref(value: str, info: ValidationInfo) -> str:
    """An asset id (normalised) or an http(s) URL."""
    if value.startswith(("http://", "https://")):
        return check_url(value, allow_private=_allow_private(info))
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("must be an asset id (from POST /v1/assets) or an http(s) URL") from None


def _webhook_url(value: str, info: ValidationInfo) -> str:
    return check_url(value, allow_private=_allow_private(info))


def _template(value: str) -> str:
    try:
        check_template(value)
    except TemplateError as error:
        raise ValueError(str(error)) from None
    return value


MediaRef = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_media_ref)]
Text = Annotated[str, Field(max_length=10_000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Options(_Strict):
    aspect_ratio: AspectRatio = "9:16"
    duration_s: DurationS = 15
    language: Language = "en"


class OptionsOverride(_Strict):
    aspect_ratio: AspectRatio | None = None
    duration_s: DurationS | None = None
    language: Language | None = None


class ItemIn(_Strict):
    """One product; it needs a title or a raw prompt."""

    ref: Annotated[str, Field(max_length=500)] | None = None
    title: Annotated[str, Field(max_length=500)] | None = None
    description: Text | None = None
    images: Annotated[list[MediaRef], Field(max_length=20)] = []
    clips: Annotated[list[MediaRef], Field(max_length=10)] = []
    music: MediaRef | None = None
    prompt: Annotated[str, Field(max_length=20_000)] | None = None
    messages: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=20_000)]], Field(max_length=20)
    ] = []
    options: OptionsOverride | None = None


class BatchIn(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    priority: Annotated[int, Field(ge=0, le=9)] = 5
    prompt_template: Annotated[
        str, Field(min_length=1, max_length=20_000), AfterValidator(_template)
    ] = DEFAULT_TEMPLATE
    webhook_url: Annotated[str, Field(max_length=2000), AfterValidator(_webhook_url)] | None = None
    options: Options = Options()
    items: Annotated[list[ItemIn], Field(min_length=1)]


BATCH_ADAPTER: TypeAdapter[BatchIn] = TypeAdapter(BatchIn)


class BatchOut(BaseModel):
    id: uuid.UUID
    name: str
    status: str
    priority: int
    item_count: int
    prompt_template: str
    webhook_url: str | None
    options: dict[str, Any]
    counts: dict[str, int] = Field(description="Jobs per state; every state is present.")
    progress: float = Field(description="Final jobs / all jobs, 0..1.")
    warning: str | None
    estimated_credits: int | None
    created_at: datetime
    finished_at: datetime | None


class BatchPage(BaseModel):
    items: list[BatchOut]
    next_cursor: str | None


class BatchActionOut(BaseModel):
    batch: BatchOut
    changed: int = Field(description="How many jobs the action changed.")
    dispatched: bool | None = Field(
        default=None, description="False when the broker was down (beat re-dispatches)."
    )


def batch_out(batch: Any, counts: dict[str, int]) -> BatchOut:
    from core.states import FINAL

    total = sum(counts.values())
    final = sum(count for state, count in counts.items() if state in FINAL)
    return BatchOut(
        id=batch.id,
        name=batch.name,
        status=batch.status,
        priority=batch.priority,
        item_count=batch.item_count,
        prompt_template=batch.prompt_template,
        webhook_url=batch.webhook_url,
        options=batch.options,
        counts=counts,
        progress=round(final / total, 4) if total else 0.0,
        warning=batch.warning,
        estimated_credits=batch.estimated_credits,
        created_at=batch.created_at,
        finished_at=batch.finished_at,
    )
