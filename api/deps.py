"""Dependencies named as types: a route's signature says what it needs."""

import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.errors import ApiError, NotFound
from core.db import new_session
from core.models import Tenant
from core.repo.tenants import tenant_for_key
from core.settings import Settings
from core.storage import Storage, open_storage


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_session() -> Iterator[Session]:
    """A session per request; routes commit what they change, the rest is rolled back."""
    session = new_session()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def get_storage(settings: SettingsDep) -> Storage:
    return open_storage(settings)


StorageDep = Annotated[Storage, Depends(get_storage)]

_bearer = HTTPBearer(auto_error=False, description="An API key from `nemo-batch apikey create`.")

_HOW_TO = "create one with `nemo-batch apikey create --tenant NAME`"


def current_tenant(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Tenant:
    """The tenant whose API key is in `Authorization: Bearer <key>`, or 401."""
    if credentials is None or not credentials.credentials:
        raise ApiError(
            401,
            "unauthorized",
            f"missing API key: send `Authorization: Bearer <key>` ({_HOW_TO})",
            headers={"WWW-Authenticate": "Bearer"},
        )
    tenant = tenant_for_key(session, credentials.credentials)
    if tenant is None:
        raise ApiError(
            401,
            "unauthorized",
            f"the API key is not valid or was revoked; {_HOW_TO}",
            headers={"WWW-Authenticate": "Bearer"},
        )
    session.commit()
    return tenant


TenantDep = Annotated[Tenant, Depends(current_tenant)]


IdPath = Annotated[
    str, Path(description="The resource's id.", json_schema_extra={"format": "uuid"})
]
"""A path id, read by `parse_id`: a text that is no UUID is a 404 like an unknown id."""


def parse_id(value: str, what: str) -> uuid.UUID:
    """A path id; anything that is not a UUID cannot exist, so it is a 404 like a missing one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(what) from None
