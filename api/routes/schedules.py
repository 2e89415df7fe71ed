"""Schedules: create, list, show, change, delete, and run now (the worker makes the batch)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.bodies import read_body
from api.deps import IdPath, SessionDep, SettingsDep, TenantDep, parse_id
from api.errors import Conflict, NotFound
from api.openapi import errors, json_body, links
from api.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    decode_time_cursor,
    encode_time_cursor,
)
from api.schemas.schedules import (
    NOT_NULL,
    SCHEDULE_ADAPTER,
    UPDATE_ADAPTER,
    ScheduleDetail,
    ScheduleIn,
    ScheduleOut,
    SchedulePage,
    ScheduleUpdate,
    schedule_detail,
    schedule_out,
)
from core import broker
from core.batch_input import BatchIn, ItemIn, Options
from core.errors import invalid, loc_path
from core.intake import build_batch, validate_json
from core.models import Schedule, Tenant
from core.prompts import DEFAULT_TEMPLATE
from core.repo import schedules as repo
from core.repo.jobs import utcnow
from core.schedules import identify_products, next_run
from core.settings import Settings

router = APIRouter(prefix="/v1/schedules", tags=["schedules"])

FIRE_TASK = "worker.fire_schedules"
SCHEDULE_OPERATIONS = ("get_schedule", "update_schedule", "delete_schedule", "run_schedule")


def _schedule(
    session: Session, tenant: Tenant, schedule_id: str, *, lock: bool = False
) -> Schedule:
    found = repo.get_schedule(session, tenant.id, parse_id(schedule_id, "schedule"), lock=lock)
    if found is None:
        raise NotFound("schedule")
    return found


def _check_items(
    session: Session, tenant: Tenant, settings: Settings, schedule: Schedule, items: list[ItemIn]
) -> None:
    """Stored items are checked as a batch of them would be (assets exist, refs distinct)."""
    spec = BatchIn.model_construct(
        name=None,
        priority=schedule.priority,
        prompt_template=schedule.prompt_template or DEFAULT_TEMPLATE,
        webhook_url=schedule.webhook_url,
        options=Options(**schedule.options),
        items=items,
    )
    spec = identify_products(spec, loc_path)
    build_batch(session, tenant, settings, spec, loc_path, idempotency_key=None, request_digest="")


def _plan(schedule: Schedule) -> None:
    """The next run: computed in the schedule's zone while enabled, none while paused."""
    enabled = schedule.enabled
    schedule.next_run_at = next_run(schedule.cron, schedule.timezone, utcnow()) if enabled else None


def _dump_items(items: list[ItemIn]) -> list[dict[str, Any]]:
    return [item.model_dump(exclude_defaults=True) for item in items]


def _create(session: Session, tenant: Tenant, settings: Settings, body: bytes) -> Schedule:
    spec = validate_json(SCHEDULE_ADAPTER, body, settings)
    if (spec.source_url is None) == (spec.items is None):
        problem = "give either source_url (a CSV or JSON feed) or items, not both"
        if spec.source_url is None:
            problem = "a schedule needs a source_url (a CSV or JSON feed) or items"
        raise invalid([{"loc": "source_url", "message": problem}])
    schedule = Schedule(
        tenant_id=tenant.id,
        name=spec.name,
        cron=spec.cron,
        timezone=spec.timezone,
        source_url=spec.source_url,
        items=_dump_items(spec.items) if spec.items else None,
        prompt_template=spec.prompt_template,
        options=spec.options.model_dump(),
        webhook_url=spec.webhook_url,
        priority=spec.priority,
        force=spec.force,
        enabled=spec.enabled,
    )
    if spec.items:
        _check_items(session, tenant, settings, schedule, spec.items)
    _plan(schedule)
    session.add(schedule)
    session.commit()
    return schedule


def _update(
    session: Session, tenant: Tenant, settings: Settings, schedule_id: str, body: bytes
) -> Schedule:
    patch = validate_json(UPDATE_ADAPTER, body, settings)
    sent = patch.model_fields_set
    nulls = sorted(name for name in sent & NOT_NULL if getattr(patch, name) is None)
    if nulls:
        raise invalid([{"loc": name, "message": "may not be null"} for name in nulls])
    if patch.source_url is not None and patch.items is not None:
        raise invalid([{"loc": "source_url", "message": "give either source_url or items"}])
    schedule = _schedule(session, tenant, schedule_id, lock=True)
    for name in sent:
        value = getattr(patch, name)
        if name == "options":
            value = value.model_dump()
        elif name == "items" and value is not None:
            value = _dump_items(value)
        setattr(schedule, name, value)
    if patch.source_url is not None:
        schedule.items = None
    if patch.items is not None:
        schedule.source_url = None
    if not schedule.source_url and not schedule.items:
        problem = "a schedule needs a source_url (a CSV or JSON feed) or items"
        raise invalid([{"loc": "source_url", "message": problem}])
    if schedule.items and sent & {"items", "prompt_template", "options"}:
        items = [ItemIn.model_validate(item) for item in schedule.items]
        _check_items(session, tenant, settings, schedule, items)
    if sent & {"cron", "timezone", "enabled"}:
        _plan(schedule)
    session.commit()
    return schedule


@router.post(
    "",
    status_code=201,
    response_model=ScheduleDetail,
    openapi_extra=json_body(ScheduleIn),
    responses=links(201, "schedule_id", "$response.body#/id", *SCHEDULE_OPERATIONS)
    | errors(400, 401, 413, 422),
    summary="Create a schedule",
)
async def create_schedule(
    request: Request, tenant: TenantDep, session: SessionDep, settings: SettingsDep
) -> ScheduleDetail:
    """A cron schedule making a batch of new or changed products from a feed or stored items."""
    body = await read_body(request, settings.max_request_bytes)
    schedule = await run_in_threadpool(_create, session, tenant, settings, body)
    return schedule_detail(schedule)


@router.get(
    "",
    response_model=SchedulePage,
    responses=errors(401, 422),
    summary="List schedules, newest first",
)
def list_schedules(
    tenant: TenantDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> SchedulePage:
    before = decode_time_cursor(cursor)
    rows = repo.list_schedules(session, tenant.id, limit=limit + 1, before=before)
    page, more = rows[:limit], len(rows) > limit
    last = page[-1] if page else None
    next_cursor = encode_time_cursor(last) if more and last else None
    return SchedulePage(items=[schedule_out(row) for row in page], next_cursor=next_cursor)


@router.get(
    "/{schedule_id}",
    response_model=ScheduleDetail,
    responses=errors(401, 404),
    summary="A schedule",
)
def get_schedule(schedule_id: IdPath, tenant: TenantDep, session: SessionDep) -> ScheduleDetail:
    return schedule_detail(_schedule(session, tenant, schedule_id))


@router.patch(
    "/{schedule_id}",
    response_model=ScheduleDetail,
    openapi_extra=json_body(ScheduleUpdate),
    responses=errors(400, 401, 404, 413, 422),
    summary="Change a schedule (pause and resume with `enabled`)",
)
async def update_schedule(
    schedule_id: IdPath,
    request: Request,
    tenant: TenantDep,
    session: SessionDep,
    settings: SettingsDep,
) -> ScheduleDetail:
    body = await read_body(request, settings.max_request_bytes)
    schedule = await run_in_threadpool(_update, session, tenant, settings, schedule_id, body)
    return schedule_detail(schedule)


@router.delete(
    "/{schedule_id}",
    status_code=204,
    response_class=Response,
    responses=errors(401, 404),
    summary="Delete a schedule",
)
def delete_schedule(schedule_id: IdPath, tenant: TenantDep, session: SessionDep) -> Response:
    """Its batches stay (and finish); they no longer name the schedule."""
    session.delete(_schedule(session, tenant, schedule_id, lock=True))
    session.commit()
    return Response(status_code=204)


@router.post(
    "/{schedule_id}/run",
    status_code=202,
    response_model=ScheduleOut,
    responses=errors(401, 404, 409),
    summary="Run a schedule now",
)
def run_schedule(
    schedule_id: IdPath, tenant: TenantDep, session: SessionDep, settings: SettingsDep
) -> ScheduleOut:
    """The schedule becomes due now (paused ones too, once); a worker makes the run within
    seconds, and `last_outcome` and `last_error` tell how it went. 409 while a run is in
    progress: one run of a schedule at a time."""
    schedule = _schedule(session, tenant, schedule_id, lock=True)
    now = utcnow()
    if schedule.running_until is not None and schedule.running_until > now:
        raise Conflict(
            "a run of this schedule is in progress; its outcome will be in last_outcome "
            "(GET the schedule), then run it again if needed",
            code="run_in_progress",
        )
    schedule.next_run_at = now
    session.commit()
    broker.send_task(
        FIRE_TASK, {"reason": "run_now"}, broker.SCHEDULES_QUEUE, broker_url=settings.redis_url
    )
    return schedule_out(schedule)
