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


PAGE_COOKIE = "nemo_batch_key"
"""The web page's sign-in: the API key in an HttpOnly, SameSite=Strict cookie (api/routes/ui.py)."""
PAGE_HEADER = "X-Nemo-Batch-Page"
"""Sent by the page's script with every change it asks for: a cross-site form cannot set it."""


def _page_key(request: Request) -> str | None:
    """The key of the page's cookie; a change (not GET or HEAD) must also carry PAGE_HEADER."""
    key = request.cookies.get(PAGE_COOKIE)
    if not key:
        return None
    if request.method not in ("GET", "HEAD") and request.headers.get(PAGE_HEADER) != "1":
        raise ApiError(
            401,
            "unauthorized",
            f"a change signed in by the page's cookie must carry the {PAGE_HEADER} header; "
            "from a program, send `Authorization: Bearer <key>`",
        )
    return key


def current_tenant(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Tenant:
    """The tenant whose API key is in `Authorization: Bearer <key>` (or the page's cookie), or
    401."""
    if credentials is None or not credentials.credentials:
        if (key := _page_key(request)) is not None:
            return tenant_for(session, key)
        raise ApiError(
            401,
            "unauthorized",
            f"missing API key: send `Authorization: Bearer <key>` ({_HOW_TO})",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return tenant_for(session, credentials.credentials)


def tenant_for(session: Session, key: str) -> Tenant:
    """The tenant of `key`, or 401 saying how to get one."""
    tenant = tenant_for_key(session, key)
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
