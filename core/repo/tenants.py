"""Tenants and their API keys (keys are stored as sha256 digests, shown once)."""

import hashlib
import secrets
import uuid
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
            webhook_secret=new_webhook_secret(),
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


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signing_secrets(tenant: Tenant) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one
    while its overlap lasts, so receivers can switch without missing a delivery."""
    until = tenant.previous_webhook_secret_until
    if tenant.previous_webhook_secret and until is not None and until > utcnow():
        return [tenant.webhook_secret, tenant.previous_webhook_secret]
    return [tenant.webhook_secret]


def rotate_webhook_secret(session: Session, tenant: Tenant, overlap: timedelta) -> str:
    """A new secret; the current one goes on signing beside it for `overlap`."""
    tenant.previous_webhook_secret = tenant.webhook_secret
    tenant.previous_webhook_secret_until = utcnow() + overlap
    tenant.webhook_secret = new_webhook_secret()
    session.flush()
    return tenant.webhook_secret


def list_api_keys(session: Session, tenant: Tenant | None = None) -> list[tuple[ApiKey, str]]:
    """Keys (never their value: a prefix, when made and last used, whether revoked) with their
    tenant's name, oldest first."""
    query = select(ApiKey, Tenant.name).join(Tenant, Tenant.id == ApiKey.tenant_id)
    if tenant is not None:
        query = query.where(ApiKey.tenant_id == tenant.id)
    rows = session.execute(query.order_by(ApiKey.created_at, ApiKey.prefix))
    return [(key, name) for key, name in rows]


def keys_matching(session: Session, prefix_or_id: str) -> list[ApiKey]:
    """Keys whose id is, or whose prefix starts with, `prefix_or_id`."""
    try:
        by_id = session.get(ApiKey, uuid.UUID(prefix_or_id))
    except ValueError:
        by_id = None
    if by_id is not None:
        return [by_id]
    return list(session.scalars(select(ApiKey).where(ApiKey.prefix.startswith(prefix_or_id))))


def revoke_api_key(key: ApiKey) -> bool:
    """Revoke it from now on; False when it already was."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = utcnow()
    return True


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
