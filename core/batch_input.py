"""What a batch request may contain, validated in one pass: the API's batches (JSON and CSV)
and the worker's scheduled runs share it."""

import uuid
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationInfo

from core.netcheck import literal_private_host
from core.prompts import DEFAULT_TEMPLATE, TemplateError, check_template

AspectRatio = Literal["9:16", "16:9", "1:1"]
Language = Annotated[
    str, Field(min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
]
DurationS = Annotated[int, Field(ge=5, le=120)]


def check_url(value: str, *, allow_private: bool = False) -> str:
    """An absolute http(s) URL with a host; literal private addresses refused unless allowed."""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    if not allow_private and literal_private_host(parts.hostname):
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
PublicUrl = Annotated[str, Field(max_length=2000), AfterValidator(_webhook_url)]
"""An http(s) URL whose host is not a literal private address (unless allowed)."""
PromptTemplate = Annotated[str, Field(min_length=1, max_length=20_000), AfterValidator(_template)]
Priority = Annotated[int, Field(ge=0, le=9)]
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
    priority: Priority = 5
    prompt_template: PromptTemplate = DEFAULT_TEMPLATE
    webhook_url: PublicUrl | None = None
    options: Options = Options()
    items: Annotated[list[ItemIn], Field(min_length=1)]


BATCH_ADAPTER: TypeAdapter[BatchIn] = TypeAdapter(BatchIn)
