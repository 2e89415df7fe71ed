"""Turn a validated batch request into a `Batch` and its job rows, ready for one bulk insert.

Each job's `input` is fully resolved (asset references, options, rendered messages), so a
worker needs nothing but the row. The API's batches and the worker's scheduled runs share it;
problems are raised as `InputError`.
"""

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from core.batch_input import BATCH_ADAPTER, BatchIn, ItemIn
from core.costs import estimated_cost
from core.errors import InputError, invalid, loc_path
from core.models import Asset, Batch, Tenant
from core.prompts import render
from core.repo.assets import assets_by_ids
from core.repo.reads import credit_account, credit_balance
from core.settings import Settings

Locate = Callable[[Sequence[str | int]], str]
Model = TypeVar("Model")
MEDIA_FIELDS = (("images", "image"), ("clips", "video"), ("music", "audio"))


def _details(errors: Sequence[Any], locate: Locate) -> list[dict[str, Any]]:
    details = []
    for error in errors:
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        message = message[:1].lower() + message[1:]
        details.append({"loc": locate(tuple(error.get("loc", ()))), "message": message})
    return details


def _context(settings: Settings) -> dict[str, Any]:
    return {"allow_private_urls": settings.allow_private_urls}


def validate_json(adapter: TypeAdapter[Model], body: bytes, settings: Settings) -> Model:
    """Parse and validate a JSON body: 400 when it is not JSON, 422 naming every bad field."""
    try:
        return adapter.validate_json(body, context=_context(settings))
    except ValidationError as error:
        errors = error.errors(include_url=False, include_input=False)
        if errors and errors[0]["type"] == "json_invalid":
            reason = errors[0].get("ctx", {}).get("error", "")
            raise InputError(
                f"the body is not valid JSON: {reason}", code="malformed_json", status=400
            ) from None
        if len(errors) == 1 and not errors[0]["loc"]:
            raise InputError("the body must be a JSON object") from None
        raise invalid(_details(errors, loc_path)) from None


def validate_body(body: dict[str, Any], locate: Locate, settings: Settings) -> BatchIn:
    try:
        return BATCH_ADAPTER.validate_python(body, context=_context(settings))
    except ValidationError as error:
        errors = error.errors(include_url=False, include_input=False)
        raise invalid(_details(errors, locate)) from None


def request_hash(kind: str, body: bytes, query: Sequence[tuple[str, str]] = ()) -> str:
    """What 'the same request' means for idempotency: the body, its type and the query."""
    return hashlib.sha256(request_hash_prefix(kind, query) + body).hexdigest()


def request_hash_prefix(kind: str, query: Sequence[tuple[str, str]] = ()) -> bytes:
    """What `request_hash` hashes before the body, for a body hashed as it streams."""
    return kind.encode() + b"\n" + json.dumps(sorted(query)).encode() + b"\n"


class _Refs:
    """Resolve media references of all items, looking the tenant's assets up in one query."""

    def __init__(self, session: Session, tenant: Tenant, spec: BatchIn) -> None:
        ids = {
            uuid.UUID(ref)
            for item in spec.items
            for field, _ in MEDIA_FIELDS
            for ref in _refs_of(item, field)
            if not ref.startswith(("http://", "https://"))
        }
        self.assets: dict[uuid.UUID, Asset] = assets_by_ids(session, tenant.id, ids)
        self._resolved: dict[str, dict[str, Any]] = {}

    def resolve(self, ref: str, kind: str) -> tuple[dict[str, Any] | None, str | None]:
        """The stored reference for `ref`, or an error message."""
        if ref.startswith(("http://", "https://")):
            return {"url": ref, "kind": kind}, None
        asset = self.assets.get(uuid.UUID(ref))
        if asset is None:
            return None, f"asset {ref} not found; upload it first with POST /v1/assets"
        if asset.kind != kind:
            return None, f"asset {ref} is {_a(asset.kind)}, not {_a(kind)}"
        resolved = self._resolved.get(ref)
        if resolved is None:
            resolved = self._resolved[ref] = {
                "asset_id": ref,
                "kind": asset.kind,
                "sha256": asset.sha256,
                "content_type": asset.content_type,
                "filename": asset.filename,
                "path": asset.path,
            }
        return resolved, None


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _refs_of(item: ItemIn, field: str) -> list[str]:
    value = getattr(item, field)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _canonical_hash(value: Any) -> str:
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def build_batch(
    session: Session,
    tenant: Tenant,
    settings: Settings,
    spec: BatchIn,
    locate: Locate,
    *,
    idempotency_key: str | None,
    request_digest: str,
) -> tuple[Batch, list[dict[str, Any]]]:
    """The batch row and its job rows, or a 422 naming every bad item field."""
    problems: list[dict[str, Any]] = []

    def problem(loc: Sequence[str | int], message: str) -> None:
        problems.append({"loc": locate(loc), "message": message})

    if len(spec.items) > settings.max_batch_items:
        problem(("items",), f"a batch holds at most {settings.max_batch_items} items")
        raise invalid(problems)
    refs = _Refs(session, tenant, spec)
    batch_id = uuid.uuid4()
    base = spec.options.model_dump()
    rows: list[dict[str, Any]] = []
    credits = 0
    for index, item in enumerate(spec.items):
        if not item.title and not item.prompt:
            problem(("items", index, "title"), "an item needs a title or a prompt")
        media: dict[str, list[dict[str, Any]]] = {}
        for field, kind in MEDIA_FIELDS:
            media[field] = []
            for position, ref in enumerate(_refs_of(item, field)):
                resolved, message = refs.resolve(ref, kind)
                if message is not None:
                    where = (position,) if field != "music" else ()
                    problem(("items", index, field, *where), message)
                elif resolved is not None:
                    media[field].append(resolved)
        if problems:
            continue
        options = {**base, **(item.options.model_dump(exclude_none=True) if item.options else {})}
        first = item.prompt or render(
            spec.prompt_template, {"title": item.title, "description": item.description, **options}
        )
        job_input = {
            "title": item.title,
            "description": item.description,
            "images": media["images"],
            "clips": media["clips"],
            "music": media["music"][0] if media["music"] else None,
            "prompt": item.prompt,
            "messages": [first, *item.messages],
            **options,
        }
        credits += estimated_cost([job_input])
        rows.append(
            {
                "id": uuid.uuid4(),
                "batch_id": batch_id,
                "tenant_id": tenant.id,
                "item_index": index,
                "ref": item.ref,
                "priority": spec.priority,
                "input": job_input,
                "options": options,
                "input_hash": _canonical_hash({"input": job_input, "options": options}),
            }
        )
    if problems:
        raise invalid(problems)
    batch = Batch(
        id=batch_id,
        tenant_id=tenant.id,
        name=spec.name or f"{len(rows)} products, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        priority=spec.priority,
        prompt_template=spec.prompt_template,
        webhook_url=spec.webhook_url,
        options=base,
        item_count=len(rows),
        idempotency_key=idempotency_key,
        request_hash=request_digest,
        estimated_credits=credits,
        warning=credit_warning(session, tenant, settings, credits),
    )
    return batch, rows


def credit_warning(session: Session, tenant: Tenant, settings: Settings, needed: int) -> str | None:
    """Say so up front when the batch will likely stop for credits."""
    if not tenant.backend_token and not settings.nemo_token:
        return (
            "no registered backend token: an anonymous token has about 100 credits, enough for "
            f"about one video, and this batch needs about {needed}; set NEMO_TOKEN or the "
            "tenant's own token (nemo-batch tenant set NAME --backend-token-stdin)"
        )
    balance = credit_balance(session, credit_account(tenant))
    if balance is not None and balance.available < needed:
        return (
            f"the last seen balance ({balance.available} credits at "
            f"{balance.seen_at:%Y-%m-%d %H:%M} UTC) is below this batch's estimate of {needed}; "
            "jobs will wait for credits"
        )
    return None
