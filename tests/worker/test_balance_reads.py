"""The batch preflight reads each backend account's balance once per pass, and not at all while
a stored balance is fresh: 300 one-item batches cost as many reads as accounts, not batches."""

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete

from core.db import session_scope
from core.models import Batch, CreditBalance, Job, Tenant
from core.repo.tenants import get_or_create_tenant
from worker.nemo import Credits
from worker.tokens import ResolvedToken


def queued_batches(tenant: Tenant, count: int) -> None:
    with session_scope() as session:
        for index in range(count):
            batch = Batch(
                tenant_id=tenant.id,
                name=f"one item {index}",
                prompt_template="{title}",
                item_count=1,
                estimated_credits=100,
            )
            session.add(batch)
            session.flush()
            session.add(
                Job(batch_id=batch.id, tenant_id=tenant.id, item_index=0, input={}, options={})
            )


@pytest.fixture()
def backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Counts the backend's balance reads; tenants named `own-*` have their own account."""
    reads: list[str] = []

    def resolve(tenant: Tenant) -> ResolvedToken:
        own = tenant.name.startswith("own-")
        account = f"tenant:{tenant.id}" if own else "shared"
        return ResolvedToken(value=account, source="registered", account=account)

    class Client:
        def __init__(self, token: str) -> None:
            self.token = token

        def credits(self) -> Credits:
            reads.append(self.token)
            return Credits(available=50, frozen=0, total=50)

    monkeypatch.setattr("worker.credits.resolve_token", resolve)
    monkeypatch.setattr("worker.credits.client_for", Client)
    with session_scope() as session:
        session.execute(delete(CreditBalance))
    yield reads
    with session_scope() as session:  # no other test's dispatcher finds these batches
        session.execute(delete(Batch).where(Batch.name.startswith("one item ")))


def test_300_one_item_batches_cost_one_balance_read_per_account(
    settings: Any, backend: list[str]
) -> None:
    from worker.credits import preflight_batches

    with session_scope() as session:
        shop = get_or_create_tenant(session, f"shop-{uuid.uuid4().hex[:8]}")
        own = get_or_create_tenant(session, f"own-{uuid.uuid4().hex[:8]}")
        session.expunge_all()
    queued_batches(shop, 150)
    queued_batches(own, 150)

    preflight_batches()
    assert sorted(backend) == sorted(["shared", f"tenant:{own.id}"])
    with session_scope() as session:
        warned = session.query(Batch).filter(Batch.tenant_id.in_([shop.id, own.id]))
        assert {batch.warning is not None for batch in warned} == {True}  # 100 > 50 credits

    preflight_batches()  # the next pass, within CREDITS_CACHE_S: no read at all
    assert len(backend) == 2


def test_without_a_cache_each_pass_reads_each_account_once(
    settings: Any, backend: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.settings import get_settings
    from worker.credits import preflight_batches

    monkeypatch.setattr(get_settings(), "credits_cache_s", 0.0)
    with session_scope() as session:
        shop = get_or_create_tenant(session, f"shop-{uuid.uuid4().hex[:8]}")
        session.expunge_all()
    queued_batches(shop, 20)
    preflight_batches()
    preflight_batches()
    assert backend == ["shared", "shared"]
