"""Which backend token a job uses, and the shared anonymous token.

A tenant's own token, else NEMO_TOKEN, is used as is. Otherwise one anonymous token per client id
is acquired under a Redis lock and shared by every worker; on code 1001 it is dropped (only if it
is still the one that failed) and acquired again, once, by whichever worker gets the lock.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.db import session_scope
from core.models import Installation, Tenant
from core.repo.reads import SHARED_ACCOUNT, credit_account_of
from core.settings import get_settings
from worker.backend import client_for, redis_client
from worker.nemo.errors import ClientIdMissing

ANON_TOKEN_KEY = "nemo:anonymous-token"
ANON_LOCK_KEY = "nemo:anonymous-token:lock"


@dataclass(frozen=True)
class ResolvedToken:
    value: str
    source: str
    """`tenant`, `registered` or `anonymous`."""
    account: str
    """The credit account this token spends: `tenant:<id>` or `shared`."""

    @property
    def registered(self) -> bool:
        return self.source != "anonymous"


class TokenUnavailable(RuntimeError):
    """No token could be had (the anonymous-token call failed)."""


def installation_client_id(session: Session) -> str:
    """The installation's client id, made once and kept in the database."""
    session.execute(
        insert(Installation)
        .values(id=1, client_id=str(uuid.uuid4()))
        .on_conflict_do_nothing(index_elements=["id"])
    )
    row = session.get(Installation, 1)
    assert row is not None
    return row.client_id


def renew_client_id(session: Session) -> str:
    """Make a new client id (the backend answered 400 for the one we sent)."""
    row = session.get(Installation, 1)
    new_id = str(uuid.uuid4())
    if row is None:
        session.add(Installation(id=1, client_id=new_id))
    else:
        row.client_id = new_id
    return new_id


def configured_token(tenant_id: uuid.UUID, backend_token: str | None) -> ResolvedToken | None:
    """The tenant's own token, else NEMO_TOKEN; None when the shared anonymous one is needed."""
    if backend_token:
        return ResolvedToken(backend_token, "tenant", credit_account_of(tenant_id, own_token=True))
    settings = get_settings()
    if settings.nemo_token:
        return ResolvedToken(settings.nemo_token, "registered", SHARED_ACCOUNT)
    return None


def resolve_token(tenant: Tenant) -> ResolvedToken:
    return configured_token(tenant.id, tenant.backend_token) or shared_anonymous_token()


def shared_anonymous_token() -> ResolvedToken:
    """The shared anonymous token for a job of a tenant without a token of its own: Redis's
    copy, else acquired single-flight (the database is read only then, for the client id)."""
    token = _cached()
    if token is None:
        with session_scope() as session:
            token = anonymous_token(session)
    return ResolvedToken(token, "anonymous", SHARED_ACCOUNT)


def _cached() -> str | None:
    raw = redis_client().get(ANON_TOKEN_KEY)
    if not raw:
        return None
    cached = json.loads(raw)
    if datetime.fromisoformat(cached["expires_at"]) <= datetime.now(UTC) + timedelta(minutes=5):
        return None
    return str(cached["token"])


def anonymous_token(session: Session) -> str:
    """The shared anonymous token, acquired single-flight when missing or expired."""
    token = _cached()
    if token:
        return token
    lock = redis_client().lock(ANON_LOCK_KEY, timeout=60, blocking_timeout=60)
    with lock:
        token = _cached()  # another worker may have refreshed it while we waited
        if token:
            return token
        client_id = installation_client_id(session)
        session.commit()
        try:
            issued = client_for(None).anonymous_token(client_id)
        except ClientIdMissing:
            # The backend refused our client id: make a new one and try once more.
            client_id = renew_client_id(session)
            session.commit()
            issued = client_for(None).anonymous_token(client_id)
        ttl = max(60, int((issued.expires_at - datetime.now(UTC)).total_seconds()))
        payload = {"token": issued.token, "expires_at": issued.expires_at.isoformat()}
        redis_client().set(ANON_TOKEN_KEY, json.dumps(payload), ex=ttl)
        return issued.token


_DROP_IF_SAME = """
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw)['token'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def drop_anonymous_token(failed_token: str) -> None:
    """Forget the shared token, but only if it is still the one that was refused."""
    redis_client().eval(_DROP_IF_SAME, 1, ANON_TOKEN_KEY, failed_token)
