"""Usage: what the tenant's stored files take against its storage quota."""

from fastapi import APIRouter

from api.deps import SessionDep, SettingsDep, TenantDep
from api.openapi import errors
from api.schemas.usage import UsageOut
from core.repo.storage_usage import usage_of

router = APIRouter(prefix="/v1/usage", tags=["usage"])


@router.get(
    "",
    name="get_usage",
    response_model=UsageOut,
    responses=errors(401),
    summary="Storage used by the tenant, its quota and the retention period",
)
def get_usage(tenant: TenantDep, session: SessionDep, settings: SettingsDep) -> UsageOut:
    usage = usage_of(session, tenant.id, settings.storage_quota_bytes)
    free = None if usage.quota is None else max(usage.quota - usage.used, 0)
    return UsageOut(
        storage_used_bytes=usage.used,
        storage_quota_bytes=usage.quota,
        storage_free_bytes=free,
        retention_days=settings.retention_days,
    )
