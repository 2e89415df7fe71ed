"""Tenants and their API keys (keys are stored as sha256 digests, shown once)."""

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import ApiKey, Tenant
from core.repo.jobs import utcnow
from core.settings import get_settings

KEY_PREFIX = "nb_"
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""Writing `last_used_at` on every request would make each read a write."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def tenant_by_name(session: Session, name: str) -> Tenant | None:
    return session.scalars(select(Tenant).where(Tenant.name == name)).first()


def get_or_create_tenant(session: Session, name: str) -> Tenant:
    tenant = session.scalars(select(Tenant).where(Tenant.name == name)).first()
    if tenant is None:
        tenant = Tenant(
            name=name,
            inflight_limit=get_settings().default_inflight_limit,
            webhook_secret="whsec_" + secrets.token_urlsafe(32),
        )
        session.add(tenant)
        session.flush()
    return tenant


def create_api_key(session: Session, tenant: Tenant) -> str:
    """Make a new key for the tenant; returns the plain key, which is never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(tenant_id=tenant.id, prefix=key[:10], key_hash=hash_key(key)))
    session.flush()
    return key


def tenant_names(session: Session) -> dict[str, str]:
    """Every tenant's name by its id (as text)."""
    return {str(id_): name for id_, name in session.execute(select(Tenant.id, Tenant.name))}


def tenant_for_key(session: Session, key: str) -> Tenant | None:
    """The tenant owning an active key, or None; marks the key used (at most once a minute)."""
    api_key = session.scalars(
        select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    ).first()
    if api_key is None:
        return None
    now = utcnow()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        api_key.last_used_at = now
    return session.get(Tenant, api_key.tenant_id)
