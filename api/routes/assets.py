"""Assets: streamed upload (sniffed by content, size-limited, deduplicated) and lookup."""

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import IdPath, SessionDep, SettingsDep, StorageDep, TenantDep, parse_id
from api.errors import ApiError, NotFound
from api.openapi import answer, errors, links, ref, request_body
from api.schemas.assets import AssetOut, AssetUpload
from api.uploads import MultipartFileReader
from core.media import ACCEPTED_EXTENSIONS, SNIFF_BYTES, MediaType, UnsupportedMedia, sniff
from core.models import Asset, Tenant
from core.repo.assets import add_asset, get_asset
from core.repo.storage_usage import QuotaExceeded, StorageUsage, charge, usage_of
from core.settings import Settings
from core.storage import StorageLimitExceeded, StoredObject

router = APIRouter(prefix="/v1/assets", tags=["assets"])

MULTIPART_SLACK = 64 * 1024
"""Room for multipart headers and boundaries above the file limit."""

_UPLOAD_DOC = request_body({"multipart/form-data": {"schema": ref(AssetUpload)}})


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"the file is larger than the limit of {limit} bytes; trim or compress it",
        [{"loc": "file", "message": f"at most {limit} bytes"}],
    )


def over_quota(usage: StorageUsage, size: int) -> ApiError:
    return ApiError(
        413,
        "storage_quota_exceeded",
        f"this file ({size} bytes) does not fit the tenant's storage quota: {usage.used} of "
        f"{usage.quota} bytes are used. Make room by waiting for the retention policy to delete "
        "old batches' videos and unused assets, or ask the operator to raise the quota "
        "(`nemo-batch tenant set NAME --storage-quota`); GET /v1/usage shows the figures",
        [{"loc": "file", "message": f"{size} bytes; room for {_room(usage)} bytes"}],
    )


def _room(usage: StorageUsage) -> int:
    return max((usage.quota or 0) - usage.used, 0)


def _check_room(session: Session, tenant: Tenant, settings: Settings, size: int) -> None:
    """Refuse early, before the bytes are read, what cannot fit (the charge decides later)."""
    usage = usage_of(session, tenant.id, settings.storage_quota_bytes)
    session.commit()  # no transaction left open while the body streams in
    if not usage.room_for(size):
        raise over_quota(usage, size)


def _record(
    session: Session,
    tenant: Tenant,
    stored: StoredObject,
    media: MediaType,
    name: str,
    settings: Settings,
) -> tuple[Asset, bool]:
    """The asset row for stored bytes and its charge on the quota, in one transaction;
    (asset, created). Over quota, nothing is recorded (the file, if no row holds it, is left
    to retention's sweep of unreferenced files)."""
    asset, created = add_asset(
        session,
        tenant_id=tenant.id,
        sha256=stored.sha256,
        size=stored.size,
        kind=media.kind,
        extension=media.extension,
        content_type=media.content_type,
        filename=name,
        path=stored.key,
    )
    if created:
        try:
            charge(session, tenant.id, stored.size, settings.storage_quota_bytes)
        except QuotaExceeded as error:
            session.rollback()
            raise over_quota(error.usage, stored.size) from None
    session.commit()
    return asset, created


@router.post(
    "",
    status_code=201,
    response_model=AssetOut,
    openapi_extra=_UPLOAD_DOC,
    responses=answer(200, AssetOut, "These bytes were uploaded before.")
    | links(201, "asset_id", "$response.body#/id", "get_asset")
    | errors(400, 401, 413, 415, 422),
    summary="Upload an image, video or audio file",
)
async def upload_asset(
    request: Request,
    response: Response,
    tenant: TenantDep,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
) -> AssetOut:
    """201 with the asset; the same bytes uploaded again answer 200 with the same asset.
    413 `storage_quota_exceeded` when the file does not fit the tenant's storage quota."""
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_SLACK:
        raise _too_large(limit)
    smallest = max(int(declared) - MULTIPART_SLACK, 1) if declared.isdigit() else 1
    await run_in_threadpool(_check_room, session, tenant, settings, smallest)
    reader = MultipartFileReader(request)
    if not await reader.find_file():
        raise ApiError(
            422,
            "validation_error",
            "file: send the file in a multipart part named `file`",
            [{"loc": "file", "message": "field required"}],
        )
    head = await reader.read_head(SNIFF_BYTES)
    if not head:
        raise ApiError(
            422,
            "validation_error",
            "file: the file is empty",
            [{"loc": "file", "message": "empty"}],
        )
    try:
        media = sniff(head)
    except UnsupportedMedia as error:
        raise ApiError(
            415,
            "unsupported_media_type",
            str(error),
            [{"loc": "file", "message": "accepted: " + ", ".join(ACCEPTED_EXTENSIONS)}],
        ) from None
    try:
        stored = await anyio.to_thread.run_sync(
            lambda: storage.save_chunks(
                "assets", reader.chunks_from_thread(head), media.extension, max_bytes=limit
            )
        )
    except StorageLimitExceeded:
        raise _too_large(limit) from None
    name = reader.filename or f"upload.{media.extension}"
    asset, created = await run_in_threadpool(
        _record, session, tenant, stored, media, name, settings
    )
    if not created:
        response.status_code = 200
    return AssetOut.model_validate(asset)


@router.get(
    "/{asset_id}",
    name="get_asset",
    response_model=AssetOut,
    responses=errors(401, 404),
    summary="An asset",
)
def get_one(asset_id: IdPath, tenant: TenantDep, session: SessionDep) -> AssetOut:
    asset = get_asset(session, tenant.id, parse_id(asset_id, "asset"))
    if asset is None:
        raise NotFound("asset")
    return AssetOut.model_validate(asset)
