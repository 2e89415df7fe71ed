"""Credits: the balance the workers see, the preflight of new batches, and the pause for 2001."""

import logging
import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.costs import estimated_cost
from core.db import session_scope
from core.models import Batch, CreditBalance, Job, Tenant
from core.repo import transitions
from core.repo.jobs import utcnow
from core.repo.pipeline import reopen_unpaused_batches
from core.settings import get_settings
from core.states import BatchStatus
from worker.backend import client_for
from worker.nemo import Credits
from worker.tokens import resolve_token

log = logging.getLogger("worker.credits")


def record_balance(session: Session, account: str, credits: Credits) -> None:
    values = {
        "available": credits.available,
        "frozen": credits.frozen,
        "total": credits.total,
        "seen_at": utcnow(),
    }
    session.execute(
        insert(CreditBalance)
        .values(account=account, **values)
        .on_conflict_do_update(index_elements=["account"], set_=values)
    )


def fetch_balance(
    session: Session,
    tenant: Tenant,
    *,
    max_age_s: float = 0.0,
    seen: dict[str, Credits] | None = None,
) -> Credits:
    """The tenant's backend balance: read once per account per pass (`seen`), and not at all
    when a balance of at most `max_age_s` is stored (by any process), so that many small
    batches do not spend the shared backend rate limit on balance reads."""
    token = resolve_token(tenant)
    if seen is not None and token.account in seen:
        return seen[token.account]
    stored = session.get(CreditBalance, token.account) if max_age_s > 0 else None
    if stored is not None and (utcnow() - stored.seen_at).total_seconds() <= max_age_s:
        credits = Credits(available=stored.available, frozen=stored.frozen, total=stored.total)
    else:
        credits = client_for(token.value).credits()
        record_balance(session, token.account, credits)
    if seen is not None:
        seen[token.account] = credits
    return credits


def preflight_batches() -> None:
    """Compare each new batch's estimated cost with the balance now; warn on the batch if short.

    Runs on the dispatch pass before admission, which moves the batch on from `queued`.
    """
    with session_scope() as session:
        batches = list(
            session.scalars(select(Batch).where(Batch.status == BatchStatus.QUEUED.value))
        )
        seen: dict[str, Credits] = {}
        max_age_s = get_settings().credits_cache_s
        for batch in batches:
            if batch.estimated_credits is None:
                inputs = list(session.scalars(select(Job.input).where(Job.batch_id == batch.id)))
                batch.estimated_credits = estimated_cost(inputs)
            tenant = session.get(Tenant, batch.tenant_id)
            assert tenant is not None
            available = fetch_balance(session, tenant, max_age_s=max_age_s, seen=seen).available
            if batch.estimated_credits > available:
                videos = available // get_settings().nemo_generation_cost
                batch.warning = (
                    f"This batch needs about {batch.estimated_credits} credits but the backend "
                    f"account has {available} available: about {videos} of its "
                    f"{batch.item_count} videos can be made. Add credits or use a registered "
                    "token (NEMO_TOKEN or the tenant's own); the rest will wait for credits."
                )


def wake_credit_waiters() -> None:
    """Jobs waiting for credits whose tenant is no longer paused go back to their step."""
    with session_scope() as session:
        transitions.credit_waiters_due(session)
        reopen_unpaused_batches(session)


def check_paused_tenants() -> list[uuid.UUID]:
    """The beat task: un-pause tenants whose balance pays for a generation again."""
    resumed: list[uuid.UUID] = []
    with session_scope() as session:
        tenants = list(session.scalars(select(Tenant).where(Tenant.paused_reason.is_not(None))))
        seen: dict[str, Credits] = {}
        for tenant in tenants:
            try:
                available = fetch_balance(session, tenant, seen=seen).available
            except Exception:
                log.warning("could not read the balance for tenant %s", tenant.name, exc_info=True)
                continue
            if available >= get_settings().nemo_generation_cost:
                tenant.paused_reason = None
                tenant.paused_at = None
                resumed.append(tenant.id)
    if resumed:
        wake_credit_waiters()
    return resumed
