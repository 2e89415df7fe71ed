"""Scheduled runs: each firing runs once however many beats fire, and a run makes videos only of
products new or changed (text, options or image bytes) since their last succeeded video.

The feed and its images are served by a local HTTP server; jobs are marked succeeded directly in
the database (no workers needed).
"""

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from core.db import session_scope
from core.models import Batch, Job, Schedule
from core.repo.tenants import get_or_create_tenant
from core.states import JobState


class Site:
    """A web server on 127.0.0.1 whose files the test changes between runs."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = site.files.get(self.path)
                if found is None:
                    self.send_error(404)
                    return
                body, content_type = found
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def put(self, path: str, body: bytes | str, content_type: str = "image/png") -> str:
        self.files[path] = (body.encode() if isinstance(body, str) else body, content_type)
        return self.url(path)


@pytest.fixture()
def site() -> Iterator[Site]:
    served = Site()
    yield served
    served.server.shutdown()
    served.server.server_close()


@pytest.fixture()
def run_settings(settings: Any) -> Any:
    return settings.model_copy(update={"allow_private_urls": True})


def make_schedule(**fields: Any) -> uuid.UUID:
    with session_scope() as session:
        tenant = get_or_create_tenant(session, f"shop-{uuid.uuid4().hex[:8]}")
        values = {"name": "nightly", "cron": "0 2 * * *", "timezone": "UTC", **fields}
        schedule = Schedule(tenant_id=tenant.id, **values)
        session.add(schedule)
        session.flush()
        return schedule.id


def schedule_row(schedule_id: uuid.UUID) -> Schedule:
    with session_scope() as session:
        schedule = session.get(Schedule, schedule_id)
        assert schedule is not None
        return schedule


def set_schedule(schedule_id: uuid.UUID, **fields: Any) -> None:
    with session_scope() as session:
        session.execute(update(Schedule).where(Schedule.id == schedule_id).values(**fields))


def batches_of(schedule_id: uuid.UUID) -> list[Batch]:
    with session_scope() as session:
        query = select(Batch).where(Batch.schedule_id == schedule_id).order_by(Batch.created_at)
        return list(session.scalars(query))


def jobs_of(batch_id: uuid.UUID | None) -> list[Job]:
    assert batch_id is not None
    with session_scope() as session:
        query = select(Job).where(Job.batch_id == batch_id).order_by(Job.item_index)
        return list(session.scalars(query))


def refs_of(batch_id: uuid.UUID | None) -> list[str | None]:
    assert batch_id is not None
    return [job.ref for job in jobs_of(batch_id)]


def finish(batch_id: uuid.UUID | None, state: JobState = JobState.SUCCEEDED, **by_ref: str) -> None:
    """Put the batch's jobs where workers would have left them (`by_ref` overrides a state)."""
    assert batch_id is not None
    with session_scope() as session:
        for job in session.scalars(select(Job).where(Job.batch_id == batch_id)):
            job.state = JobState(by_ref.get(job.ref or "", state.value))
            job.finished_at = datetime.now(UTC)


def csv_feed(rows: list[tuple[str, str, str]]) -> str:
    lines = ["ref,title,images"] + [",".join(row) for row in rows]
    return "\n".join(lines) + "\n"


def image(n: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes([n]) * 64


def test_runs_make_videos_only_of_new_or_changed_products_until_forced(
    site: Site, run_settings: Any
) -> None:
    from worker.schedules import run_schedule

    a, b = site.put("/a.png", image(1)), site.put("/b.png", image(2))
    rows = [("sku-1", "Blue mug", a), ("sku-2", "Red cup", b), ("sku-3", "Plate", "")]
    feed = site.put("/feed.csv", csv_feed(rows), "text/csv")
    schedule_id = make_schedule(source_url=feed)

    first = run_schedule(schedule_id, run_settings)
    assert refs_of(first) == ["sku-1", "sku-2", "sku-3"]
    assert all(job.product_fingerprint for job in jobs_of(first))
    assert schedule_row(schedule_id).last_batch_id == first
    finish(first)

    assert run_schedule(schedule_id, run_settings) is None
    unchanged = schedule_row(schedule_id)
    assert "nothing new or changed among 3 products" in (unchanged.last_outcome or "")
    assert unchanged.last_error is None
    assert len(batches_of(schedule_id)) == 1

    rows[0] = ("sku-1", "Blue mug XL", a)
    site.put("/feed.csv", csv_feed(rows), "text/csv")
    site.put("/b.png", image(3))  # same URL, new bytes
    changed = run_schedule(schedule_id, run_settings)
    assert refs_of(changed) == ["sku-1", "sku-2"]
    assert "2 of 3 products" in (schedule_row(schedule_id).last_outcome or "")

    finish(changed, JobState.SUCCEEDED, **{"sku-2": JobState.FAILED.value})
    retried = run_schedule(schedule_id, run_settings)
    assert refs_of(retried) == ["sku-2"]  # its new input has no succeeded video yet

    assert run_schedule(schedule_id, run_settings) is None  # sku-2's video is on its way

    set_schedule(schedule_id, force=True)
    forced = run_schedule(schedule_id, run_settings)
    assert refs_of(forced) == ["sku-1", "sku-2", "sku-3"]
    assert "all" in (schedule_row(schedule_id).last_outcome or "")


def test_stored_items_and_a_json_feed_are_read_like_a_batch(site: Site, run_settings: Any) -> None:
    from worker.schedules import run_schedule

    items = [{"ref": "p1", "title": "Lamp", "options": {"duration_s": 30}}, {"title": "Desk"}]
    stored = make_schedule(items=items, options={"aspect_ratio": "1:1"})
    batch_id = run_schedule(stored, run_settings)
    jobs = jobs_of(batch_id)
    assert [job.ref for job in jobs] == ["p1", "Desk"]  # a product without a ref is its title
    assert jobs[0].options == {"aspect_ratio": "1:1", "duration_s": 30, "language": "en"}

    feed = site.put("/feed.json", '{"items": [{"ref": "x", "title": "Chair"}]}', "text/plain")
    assert refs_of(run_schedule(make_schedule(source_url=feed), run_settings)) == ["x"]


@pytest.mark.parametrize(
    ("feed", "words"),
    [
        ("/missing.csv", "answered HTTP 404"),
        ("/bad.csv", "line 3, column images"),
        ("/twins.json", "appears twice"),
    ],
)
def test_a_run_that_cannot_make_a_batch_says_why_on_the_schedule(
    site: Site, run_settings: Any, feed: str, words: str
) -> None:
    from worker.schedules import run_schedule

    site.put("/bad.csv", "ref,title,images\nok,Mug,\nbad,Cup,not-an-image\n", "text/csv")
    site.put("/twins.json", '[{"ref": "a", "title": "A"}, {"ref": "a", "title": "B"}]', "a/json")
    schedule_id = make_schedule(source_url=site.url(feed))
    assert run_schedule(schedule_id, run_settings) is None
    schedule = schedule_row(schedule_id)
    assert words in (schedule.last_error or "")
    assert schedule.last_outcome == "no batch: the run failed"
    assert batches_of(schedule_id) == []


def test_a_feed_on_a_private_address_is_refused_unless_allowed(site: Site, settings: Any) -> None:
    from worker.schedules import run_schedule

    schedule_id = make_schedule(source_url=site.put("/feed.csv", "title\nMug\n", "text/csv"))
    refused = settings.model_copy(update={"allow_private_urls": False})
    assert run_schedule(schedule_id, refused) is None
    assert "private or reserved address" in (schedule_row(schedule_id).last_error or "")
    allowed = settings.model_copy(update={"allow_private_urls": True})
    assert refs_of(run_schedule(schedule_id, allowed)) == ["Mug"]
    assert schedule_row(schedule_id).last_error is None


def test_a_product_whose_image_cannot_be_read_waits_and_the_rest_go_ahead(
    site: Site, run_settings: Any
) -> None:
    from worker.schedules import run_schedule

    good = site.put("/good.png", image(7))
    rows = [("ok", "Mug", good), ("broken", "Cup", site.url("/gone.png"))]
    schedule_id = make_schedule(source_url=site.put("/feed.csv", csv_feed(rows), "text/csv"))
    assert refs_of(run_schedule(schedule_id, run_settings)) == ["ok"]
    error = schedule_row(schedule_id).last_error or ""
    assert "1 product(s) skipped" in error and "gone.png answered HTTP 404" in error


def test_a_due_schedule_fires_once_even_with_two_firers_at_once(
    site: Site, run_settings: Any
) -> None:
    from worker.schedules import fire_due

    feed = site.put("/feed.csv", csv_feed([("s", "Stool", "")]), "text/csv")
    due = datetime.now(UTC) - timedelta(minutes=1)
    schedule_id = make_schedule(
        source_url=feed, cron="30 2 * * *", timezone="America/New_York", next_run_at=due
    )
    start = threading.Barrier(2)

    def fire() -> None:
        start.wait()
        fire_due(run_settings)

    firers = [threading.Thread(target=fire) for _ in range(2)]
    for firer in firers:
        firer.start()
    for firer in firers:
        firer.join(timeout=120)
    assert len(batches_of(schedule_id)) == 1

    schedule = schedule_row(schedule_id)
    assert schedule.next_run_at is not None and schedule.next_run_at > datetime.now(UTC)
    local = schedule.next_run_at.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (2, 30)
    assert schedule.next_run_at - datetime.now(UTC) <= timedelta(days=1)

    fire_due(run_settings)
    assert len(batches_of(schedule_id)) == 1  # not due again until tomorrow


def test_a_paused_schedule_run_now_fires_once_and_stays_paused(
    site: Site, run_settings: Any
) -> None:
    from worker.schedules import fire_due

    feed = site.put("/feed.csv", csv_feed([("s", "Stool", "")]), "text/csv")
    schedule_id = make_schedule(source_url=feed, enabled=False, next_run_at=datetime.now(UTC))
    fire_due(run_settings)
    assert len(batches_of(schedule_id)) == 1
    assert schedule_row(schedule_id).next_run_at is None


def test_a_firing_whose_worker_died_mid_run_runs_after_the_lease_not_tomorrow(
    site: Site, run_settings: Any
) -> None:
    from worker.schedules import RUN_LEASE, claim_next, run_schedule

    feed = site.put("/feed.csv", csv_feed([("s", "Stool", "")]), "text/csv")
    now = datetime.now(UTC)
    schedule_id = make_schedule(source_url=feed, cron="0 2 * * *", next_run_at=now)

    def claimed_at(when: datetime) -> set[Any]:
        """Every firing due at `when` (other tests' schedules may be due too)."""
        return set(iter(lambda: claim_next(when), None))

    # A worker claims the firing and dies before its run stores anything.
    assert schedule_id in claimed_at(now)
    assert schedule_id not in claimed_at(now + timedelta(minutes=1))  # nobody runs it twice

    assert schedule_id in claimed_at(now + RUN_LEASE + timedelta(seconds=1))
    run_schedule(schedule_id, run_settings)
    assert len(batches_of(schedule_id)) == 1
    schedule = schedule_row(schedule_id)
    assert schedule.next_run_at is not None and schedule.next_run_at > datetime.now(UTC)
    assert (schedule.next_run_at.hour, schedule.next_run_at.minute) == (2, 0)
