"""The storage quota's counter: charges that race for the last bytes never take a tenant over
its quota, the override beats the setting, and a recount agrees with the rows."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from typer.testing import CliRunner

from core.db import get_engine, session_scope
from core.models import Asset, Batch, Job, Tenant
from core.repo.storage_usage import (
    UNLIMITED,
    QuotaExceeded,
    charge,
    effective_quota,
    recount,
    usage_of,
)
from core.repo.tenants import get_or_create_tenant


def new_tenant(quota: int | None = None) -> uuid.UUID:
    with session_scope() as session:
        tenant = get_or_create_tenant(session, f"shop-{uuid.uuid4().hex[:8]}")
        tenant.storage_quota_bytes = quota
        return tenant.id


def test_charges_racing_for_the_last_bytes_never_pass_the_quota(settings: Any) -> None:
    tenant_id = new_tenant(quota=1_000)

    def one_charge(_: int) -> bool:
        try:
            with get_engine().begin() as connection:
                charge(connection, tenant_id, 100, None)
        except QuotaExceeded:
            return False
        return True

    with ThreadPoolExecutor(16) as pool:
        passed = list(pool.map(one_charge, range(40)))

    assert sum(passed) == 10
    with session_scope() as session:
        assert usage_of(session, tenant_id, None).used == 1_000


def test_the_tenants_override_beats_the_setting_and_unlimited_means_no_limit(
    settings: Any,
) -> None:
    assert effective_quota(None, 500) == 500
    assert effective_quota(2_000, 500) == 2_000
    assert effective_quota(UNLIMITED, 500) is None
    assert effective_quota(None, None) is None
    tenant_id = new_tenant()
    with session_scope() as session:
        with pytest.raises(QuotaExceeded) as refused:
            charge(session, tenant_id, 501, 500)
        assert refused.value.usage.used == 0 and refused.value.usage.quota == 500
        charge(session, tenant_id, 500, 500)
        session.get_one(Tenant, tenant_id).storage_quota_bytes = UNLIMITED
        session.flush()
        charge(session, tenant_id, 10**12, 500)
        assert usage_of(session, tenant_id, 500).used == 10**12 + 500
        charge(session, tenant_id, -(10**13), 500)  # a release never goes below zero
        assert usage_of(session, tenant_id, 500).used == 0


def test_a_recount_counts_assets_and_stored_outputs_and_not_deleted_ones(settings: Any) -> None:
    tenant_id = new_tenant()
    with session_scope() as session:
        for size in (100, 250):
            session.add(
                Asset(
                    tenant_id=tenant_id,
                    sha256=uuid.uuid4().hex * 2,
                    size=size,
                    kind="image",
                    extension="png",
                    content_type="image/png",
                    filename="a.png",
                    path="assets/00/x.png",
                )
            )
        batch = Batch(tenant_id=tenant_id, name="b", prompt_template="{title}", item_count=3)
        session.add(batch)
        session.flush()
        for index, (output, checkpoint) in enumerate(
            [
                ({"path": "outputs/00/x.mp4", "size": 40, "stored_bytes": 45}, {}),  # older
                (None, {"storage_charged": 1_000}),  # reserved while it waits for disk space
                ({"size": 40, "deleted_at": "2026-01-01"}, {"storage_charged": 0}),  # retention
            ]
        ):
            session.add(
                Job(
                    batch_id=batch.id,
                    tenant_id=tenant_id,
                    item_index=index,
                    input={},
                    options={},
                    output=output,
                    checkpoint=checkpoint,
                )
            )
        session.get_one(Tenant, tenant_id).storage_used_bytes = 7
        session.flush()
        assert recount(session, tenant_id) == 350 + 45 + 1_000
        assert usage_of(session, tenant_id, None).used == 1_395


def test_an_operator_sets_and_reads_a_tenants_quota(settings: Any) -> None:
    from cli.main import app

    name = f"shop-{uuid.uuid4().hex[:8]}"
    runner = CliRunner()
    done = runner.invoke(app, ["tenant", "set", name, "--storage-quota", "5MB"])
    assert done.exit_code == 0, done.output
    shown = runner.invoke(app, ["tenant", "usage", name, "--recount"])
    assert shown.exit_code == 0, shown.output
    assert "5,000,000 bytes" in shown.output and "used 0 bytes" in shown.output
    assert runner.invoke(app, ["tenant", "set", name, "--storage-quota", "lots"]).exit_code != 0
    assert (
        runner.invoke(app, ["tenant", "set", name, "--storage-quota", "unlimited"]).exit_code == 0
    )
    assert "quota no limit" in runner.invoke(app, ["tenant", "usage", name]).output
    with session_scope() as session:
        tenant = session.query(Tenant).filter(Tenant.name == name).one()
        assert tenant.storage_quota_bytes == UNLIMITED
