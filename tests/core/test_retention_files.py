"""RETENTION_DAYS for files, on both stores: the videos of jobs final for longer go (their
facts stay, marked deleted), assets no job within it uses go, a content-addressed object goes
only when no row (any tenant's, any job's) names it any more, a dry run counts and deletes
nothing, and the tenants' storage usage goes down by what they were charged."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from core.db import session_scope
from core.models import Asset, Batch, Job, Tenant
from core.repo.jobs import utcnow
from core.repo.tenants import get_or_create_tenant
from core.retention import apply_retention
from core.retention_files import FileReport, sweep_objects
from core.storage import AREAS, ObjectInfo, Storage

OLD = utcnow() - timedelta(days=40)
RECENT = utcnow() - timedelta(days=1)


def aged(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's listing says every object was written 100 days ago (files cannot be made
    old on S3); everything else about the store is real."""
    listing = storage.list_objects

    def old_listing(area: str) -> Iterator[ObjectInfo]:
        for found in listing(area):
            yield replace(found, modified=found.modified - timedelta(days=100))

    monkeypatch.setattr(storage, "list_objects", old_listing)


@dataclass
class World:
    keys: dict[str, str]
    tenants: dict[str, uuid.UUID]
    jobs: dict[str, uuid.UUID]
    assets: dict[str, uuid.UUID]


def put(storage: Storage, area: str, content: bytes, extension: str) -> str:
    return storage.save_chunks(area, [content + uuid.uuid4().bytes], extension).key


def build(storage: Storage) -> World:
    keys = {
        "shared_asset": put(storage, "assets", b"shared", "png"),
        "old_asset": put(storage, "assets", b"old", "png"),
        "used_asset": put(storage, "assets", b"used", "png"),
        "new_asset": put(storage, "assets", b"new", "png"),
        "old_video": put(storage, "outputs", b"v1" * 500, "mp4"),
        "old_poster": put(storage, "posters", b"p1" * 50, "jpg"),
        "shared_video": put(storage, "outputs", b"v2" * 500, "mp4"),
        "own_video": put(storage, "outputs", b"v3" * 500, "mp4"),
        "old_input": put(storage, "inputs", b"i1", "png"),
        "live_input": put(storage, "inputs", b"i2", "png"),
        "orphan": put(storage, "outputs", b"orphan", "mp4"),
    }
    with session_scope() as session:
        tenants = {
            name: get_or_create_tenant(session, f"{name}-{uuid.uuid4().hex[:8]}").id
            for name in ("a", "b")
        }
        assets: dict[str, uuid.UUID] = {}

        def asset(name: str, tenant: str, key: str, created: datetime) -> None:
            row = Asset(
                tenant_id=tenants[tenant],
                sha256=uuid.uuid4().hex * 2,
                size=1_000,
                kind="image",
                extension="png",
                content_type="image/png",
                filename="a.png",
                path=key,
                created_at=created,
            )
            session.add(row)
            session.flush()
            assets[name] = row.id

        asset("a_shared", "a", keys["shared_asset"], OLD)  # unused: goes, the object stays
        asset("b_shared", "b", keys["shared_asset"], RECENT)
        asset("a_old", "a", keys["old_asset"], OLD)
        asset("a_used", "a", keys["used_asset"], OLD)
        asset("a_new", "a", keys["new_asset"], RECENT)
        jobs: dict[str, uuid.UUID] = {}

        def job(
            name: str,
            tenant: str,
            state: str,
            finished: datetime | None,
            output_key: str | None = None,
            **extra: Any,
        ) -> None:
            batch = Batch(
                tenant_id=tenants[tenant], name=name, prompt_template="{title}", item_count=1
            )
            session.add(batch)
            session.flush()
            output = None
            checkpoint = dict(extra.pop("checkpoint", {}))
            if output_key:
                output = {"path": output_key, "size": 1_000, "stored_bytes": 1_100}
                if name == "old":
                    output["poster_path"] = keys["old_poster"]
                checkpoint["storage_charged"] = 1_100
            row = Job(
                batch_id=batch.id,
                tenant_id=tenants[tenant],
                item_index=0,
                state=state,
                finished_at=finished,
                output=output,
                checkpoint=checkpoint,
                options={},
                **extra,
            )
            session.add(row)
            session.flush()
            jobs[name] = row.id

        job(
            "old",
            "a",
            "succeeded",
            OLD,
            keys["old_video"],
            checkpoint={"fetched": {"https://x.test/1.png": {"key": keys["old_input"]}}},
            input={"images": [{"asset_id": str(assets["a_old"]), "path": keys["old_asset"]}]},
        )
        job("old_shared", "a", "succeeded", OLD, keys["shared_video"], input={})
        job("recent_shared", "b", "succeeded", RECENT, keys["shared_video"], input={})
        job("recent", "b", "succeeded", RECENT, keys["own_video"], input={})
        job(
            "queued",
            "a",
            "queued",
            None,
            checkpoint={"fetched": {"https://x.test/2.png": {"key": keys["live_input"]}}},
            input={"images": [{"asset_id": str(assets["a_used"]), "path": keys["used_asset"]}]},
        )
        for tenant_id in tenants.values():
            session.get_one(Tenant, tenant_id).storage_used_bytes = 100_000
    return World(keys, tenants, jobs, assets)


def existing(storage: Storage, world: World) -> set[str]:
    return {name for name, key in world.keys.items() if storage.exists(key)}


def used(world: World, tenant: str) -> int:
    with session_scope() as session:
        return session.get_one(Tenant, world.tenants[tenant]).storage_used_bytes


def test_files_past_retention_go_once_no_row_names_them_and_a_dry_run_only_counts(
    settings: Any, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build(storage)
    aged(storage, monkeypatch)
    gone = ("old_asset", "old_video", "old_poster", "old_input", "orphan")
    sizes = {found.key: found.size for area in AREAS for found in storage.list_objects(area)}

    with session_scope() as session:
        dry = apply_retention(session, 30, dry_run=True, storage=storage)
    assert existing(storage, world) == set(world.keys)
    assert used(world, "a") == used(world, "b") == 100_000
    with session_scope() as session:
        output = session.get_one(Job, world.jobs["old"]).output
        assert output is not None and output["path"] == world.keys["old_video"]
        assert session.get(Asset, world.assets["a_old"]) is not None

    with session_scope() as session:
        done = apply_retention(session, 30, dry_run=False, storage=storage)

    assert existing(storage, world) == {
        "shared_asset",  # tenant b's recent row names it
        "used_asset",  # a queued job uses it
        "new_asset",
        "shared_video",  # the recent job of tenant b names it
        "own_video",
        "live_input",
    }
    assert (dry.files.outputs, dry.files.assets, dry.files.objects) == (2, 2, 5)
    assert (done.files.outputs, done.files.assets, done.files.objects) == (2, 2, 5)
    assert dry.files.bytes == done.files.bytes == sum(sizes[world.keys[name]] for name in gone)
    assert "would delete" in str(dry) and "5 files" in str(dry)
    # Tenant a was charged 2 x 1,100 for its two old videos and 2 x 1,000 for two assets.
    assert used(world, "a") == 100_000 - 4_200
    assert used(world, "b") == 100_000
    with session_scope() as session:
        old = session.get_one(Job, world.jobs["old"])
        assert old.output is not None
        assert "path" not in old.output and "poster_path" not in old.output
        assert old.output["deleted_at"] and old.output["retention_days"] == 30
        assert old.output["size"] == 1_000  # the facts stay
        assert session.get(Asset, world.assets["a_old"]) is None
        assert session.get(Asset, world.assets["a_shared"]) is None
        assert session.get(Asset, world.assets["b_shared"]) is not None
        assert session.get(Asset, world.assets["a_used"]) is not None
        recent = session.get_one(Job, world.jobs["recent_shared"]).output
        assert recent is not None and recent["path"] == world.keys["shared_video"]

    with session_scope() as session:  # a second run finds nothing more
        again = apply_retention(session, 30, dry_run=False, storage=storage)
    assert (again.files.outputs, again.files.assets, again.files.objects) == (0, 0, 0)


def test_recently_written_files_are_spared_whatever_the_retention(
    settings: Any, storage: Storage
) -> None:
    orphan = put(storage, "outputs", b"just written", "mp4")
    now = utcnow()
    with session_scope() as session:
        early = FileReport()
        sweep_objects(session, storage, now - timedelta(minutes=1), now, early, dry_run=False)
        assert storage.exists(orphan) and early.objects == 0
        later = now + timedelta(hours=3)  # nothing names it, and it is no longer recent
        late = FileReport()
        sweep_objects(session, storage, later - timedelta(minutes=1), later, late, dry_run=False)
    assert not storage.exists(orphan) and late.objects == 1
