"""Uploaded assets: one row per tenant and content (sha256), found by id in one query."""

import uuid
from collections.abc import Collection

from sqlalchemy import ARRAY, Uuid, any_, bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.models import Asset


def get_asset(session: Session, tenant_id: uuid.UUID, asset_id: uuid.UUID) -> Asset | None:
    return session.scalars(
        select(Asset).where(Asset.id == asset_id, Asset.tenant_id == tenant_id)
    ).first()


def add_asset(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    sha256: str,
    size: int,
    kind: str,
    extension: str,
    content_type: str,
    filename: str,
    path: str,
) -> tuple[Asset, bool]:
    """The tenant's asset with this content and whether it is new (same bytes twice: not)."""
    inserted = session.execute(
        insert(Asset)
        .values(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            sha256=sha256,
            size=size,
            kind=kind,
            extension=extension,
            content_type=content_type,
            filename=filename,
            path=path,
        )
        .on_conflict_do_nothing(constraint="uq_assets_tenant_sha256")
        .returning(Asset.id)
    ).first()
    asset = session.scalars(
        select(Asset).where(Asset.tenant_id == tenant_id, Asset.sha256 == sha256)
    ).one()
    return asset, inserted is not None


def assets_by_ids(
    session: Session, tenant_id: uuid.UUID, asset_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, Asset]:
    """The tenant's assets among `asset_ids`, in one query whatever the count."""
    if not asset_ids:
        return {}
    ids = bindparam("ids", list(asset_ids), type_=ARRAY(Uuid()))
    rows = session.scalars(select(Asset).where(Asset.tenant_id == tenant_id, Asset.id == any_(ids)))
    return {asset.id: asset for asset in rows}
