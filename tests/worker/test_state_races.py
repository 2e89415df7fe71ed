"""Races on a job's state against real PostgreSQL: random interleavings of cancel, retry, step
outcomes, lease expiry, admission and sweeper passes, from many threads across many jobs.

No backend and no broker: the runner's own outcome path (`worker.runner.apply_outcome`), the
API's cancel and retry (`core.repo.transitions`), admission and the sweeper run as they do in
production; only the messages they would send after commit are collected instead.
"""

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.states import FINAL, RUNNING, JobState

THREADS = 8
JOBS_PER_BATCH = 12
BATCHES = 4


@dataclass(frozen=True)
class Worker:
    """A worker that claimed one step of one job and has not reported yet."""

    job_id: uuid.UUID
    step: JobState
    lease: uuid.UUID
    attempt: int


@dataclass
class World:
    """What the test knows: batches, in-flight workers, and what it saw happen."""

    batch_ids: list[uuid.UUID]
    job_ids: list[uuid.UUID]
    lock: threading.Lock = field(default_factory=threading.Lock)
    workers: list[Worker] = field(default_factory=list)
    stale_leases: set[uuid.UUID] = field(default_factory=set)
    """Leases whose writes were issued after the test saw another lease current: all dropped."""
    reopened: Counter[uuid.UUID] = field(default_factory=Counter)
    operations: Counter[str] = field(default_factory=Counter)

    def take_worker(self, rng: random.Random) -> Worker | None:
        with self.lock:
            if not self.workers:
                return None
            return self.workers.pop(rng.randrange(len(self.workers)))


@pytest.fixture()
def quiet_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Collect what would be sent after commit (chains, dispatch, webhooks) instead of sending."""
    from worker import enqueue, webhooks

    sent: list[str] = []
    monkeypatch.setattr(enqueue, "pipelines_from", lambda jobs: sent.extend("chain" for _ in jobs))
    monkeypatch.setattr(enqueue, "dispatch_soon", lambda: sent.append("dispatch"))
    monkeypatch.setattr(webhooks, "send_delivery", lambda *args: sent.append("webhook"))
    yield sent


def _make_world() -> World:
    from core.db import session_scope
    from core.models import Batch, Job
    from core.repo.tenants import get_or_create_tenant

    batch_ids, job_ids = [], []
    with session_scope() as session:
        tenant = get_or_create_tenant(session, f"races-{uuid.uuid4().hex[:8]}")
        tenant.inflight_limit = BATCHES * JOBS_PER_BATCH
        for number in range(BATCHES):
            batch = Batch(
                tenant_id=tenant.id,
                name=f"race {number}",
                prompt_template="t",
                item_count=JOBS_PER_BATCH,
                webhook_url="http://127.0.0.1:9/hook",
            )
            session.add(batch)
            session.flush()
            batch_ids.append(batch.id)
            for index in range(JOBS_PER_BATCH):
                job = Job(batch_id=batch.id, tenant_id=tenant.id, item_index=index)
                session.add(job)
                session.flush()
                job_ids.append(job.id)
    return World(batch_ids, job_ids)


def _current_lease(job_id: uuid.UUID) -> uuid.UUID | None:
    from core.db import session_scope
    from core.models import Job

    with session_scope() as session:
        return session.scalar(select(Job.lease_token).where(Job.id == job_id))


def _state(job_id: uuid.UUID) -> JobState:
    from core.db import session_scope
    from core.models import Job

    with session_scope() as session:
        state = session.scalar(select(Job.state).where(Job.id == job_id))
        assert state is not None
        return state


# -- what the actors do ---------------------------------------------------------------------


def claim(world: World, rng: random.Random, job_id: uuid.UUID) -> None:
    from core.db import get_engine
    from core.repo.transitions import claim_step

    state = _state(job_id)
    step = JobState.TOKEN if state == JobState.ADMITTED else state
    if step not in RUNNING:
        return
    lease_s = rng.choice([0.05, 0.2, 30.0])
    with get_engine().begin() as connection:
        claimed = claim_step(connection, job_id, step, lease_s)
    if claimed is not None:
        with world.lock:
            world.workers.append(Worker(job_id, step, claimed.lease, claimed.step_attempts))


def report(world: World, rng: random.Random, worker: Worker, *, finish: bool = False) -> None:
    """The worker saves a checkpoint, renews its lease, or records an outcome."""
    from core.db import get_engine
    from core.repo.transitions import LeaseLost, extend_leases, merge_checkpoint
    from worker.outcomes import Advance, Backoff, Fail, Outcome, Wait
    from worker.runner import apply_outcome

    stale = _current_lease(worker.job_id) != worker.lease  # tokens never come back
    if stale:
        with world.lock:
            world.stale_leases.add(worker.lease)
    roll = rng.random()
    if not finish and roll < 0.15:
        try:
            with get_engine().begin() as connection:
                merge_checkpoint(connection, worker.job_id, worker.lease, {"by": str(worker.lease)})
        except LeaseLost:
            pass
        else:
            assert not stale, "a stale worker's checkpoint save was written"
            with world.lock:
                world.workers.append(worker)  # still running
        return
    if not finish and roll < 0.3:
        with get_engine().begin() as connection:
            renewed = extend_leases(connection, [(worker.job_id, worker.lease)], lease_s=30.0)
        assert not (stale and renewed), "a stale worker's lease was renewed"
        if renewed:
            with world.lock:
                world.workers.append(worker)
        return
    tag = f"lease {worker.lease}"
    outcome: Outcome
    if roll < 0.8 or finish:
        outcome = Advance(checkpoint={"by": str(worker.lease)}, message=tag)
    elif roll < 0.88:
        outcome = Backoff(rng.choice([0.0, 0.05]), "backend", tag)
    elif roll < 0.94:
        outcome = Wait(rng.choice([0.0, 0.05]), message=tag)
    else:
        outcome = Fail("backend", f"The backend refused the job ({tag}).")
    if finish and rng.random() < 0.1:
        outcome = Fail("backend", f"The backend refused the job ({tag}).")
    advanced = apply_outcome(
        worker.job_id, worker.step, outcome, 1, attempt=worker.attempt, lease=worker.lease
    )
    assert not (stale and advanced), "a stale worker advanced its job"


def cancel(job_id: uuid.UUID) -> None:
    from core.db import session_scope
    from core.models import Job
    from core.repo.transitions import cancel_job

    with session_scope() as session:
        job = session.get(Job, job_id, with_for_update=True)
        assert job is not None
        if job.state not in FINAL:
            cancel_job(session, job, "canceled by the race test")


def retry(world: World, job_id: uuid.UUID) -> None:
    from core.db import session_scope
    from core.models import Job
    from core.repo.transitions import retry_job

    with session_scope() as session:
        job = session.get(Job, job_id, with_for_update=True)
        assert job is not None
        if job.state in (JobState.FAILED, JobState.CANCELED):
            batch_id = job.batch_id
            if retry_job(session, job, "retried by the race test"):
                with world.lock:
                    world.reopened[batch_id] += 1


def cancel_whole_batch(batch_id: uuid.UUID) -> None:
    from core.db import session_scope
    from core.repo.transitions import cancel_batch

    with session_scope() as session:
        if cancel_batch(session, batch_id, "batch canceled by the race test") is None:
            session.rollback()


def expire_lease(job_id: uuid.UUID) -> None:
    """Time passes for one job: its lease (if any) ends now, as a paused worker's would."""
    from core.db import session_scope
    from core.models import Job
    from core.repo.jobs import utcnow

    with session_scope() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.lease_expires_at.is_not(None))
            .values(lease_expires_at=utcnow() - timedelta(seconds=1), next_attempt_at=None)
        )


def sweeper_pass() -> None:
    from worker.admission import admit_jobs
    from worker.recovery import claim_due, sweep

    admit_jobs()
    claim_due()
    sweep()


def act(world: World, rng: random.Random) -> None:
    """One random operation."""
    job_id = rng.choice(world.job_ids)
    roll = rng.random()
    operation: Callable[[], None]
    if roll < 0.30:
        name, operation = "claim", lambda: claim(world, rng, job_id)
    elif roll < 0.60:
        worker = world.take_worker(rng)
        if worker is None:
            return
        name, operation = "report", lambda: report(world, rng, worker)
    elif roll < 0.70:
        name, operation = "cancel", lambda: cancel(job_id)
    elif roll < 0.80:
        name, operation = "retry", lambda: retry(world, job_id)
    elif roll < 0.88:
        name, operation = "expire_lease", lambda: expire_lease(job_id)
    elif roll < 0.995:
        name, operation = "sweeper", sweeper_pass
    else:
        batch_id = rng.choice(world.batch_ids)
        name, operation = "cancel_batch", lambda: cancel_whole_batch(batch_id)
    operation()
    with world.lock:
        world.operations[name] += 1


def run_threads(count: int, body: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def guarded(number: int) -> None:
        try:
            body(number)
        except BaseException as error:  # a deadlock or a broken invariant fails the test
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(thread.is_alive() for thread in threads), "a thread never finished"
    if errors:
        raise errors[0]


def drain(world: World, rng: random.Random) -> None:
    """No more cancels or retries: every job is driven to a final state."""
    deadline = time.monotonic() + 120
    while True:
        states = {job_id: _state(job_id) for job_id in world.job_ids}
        if all(state in FINAL for state in states.values()):
            return
        assert time.monotonic() < deadline, f"jobs never final: {Counter(states.values())}"
        for job_id, state in states.items():
            if state not in FINAL:
                expire_lease(job_id)
        sweeper_pass()
        for job_id in world.job_ids:
            claim(world, rng, job_id)
        while (worker := world.take_worker(rng)) is not None:
            report(world, rng, worker, finish=True)


# -- the test ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_interleavings_leave_every_job_final_and_each_batch_completed_once(
    settings: object, quiet_broker: list[str], seed: int
) -> None:
    operations_per_thread = 400
    world = _make_world()

    def chaos(number: int) -> None:
        rng = random.Random(seed * 100 + number)
        for _ in range(operations_per_thread):
            act(world, rng)

    run_threads(THREADS, chaos)
    drain(world, random.Random(seed))

    assert world.operations["report"] > 200 and world.operations["cancel"] > 100
    assert_consistent(world)


def assert_consistent(world: World) -> None:
    from core.db import session_scope
    from core.models import Batch, Job, JobEvent, WebhookDelivery
    from core.repo.batches import FINAL_BATCH

    with session_scope() as session:
        for batch_id in world.batch_ids:
            batch = session.get(Batch, batch_id)
            assert batch is not None
            jobs = list(session.scalars(select(Job).where(Job.batch_id == batch_id)))
            counts = Counter(str(job.state) for job in jobs)
            assert all(JobState(state) in FINAL for state in counts), counts
            assert batch.status in FINAL_BATCH and batch.finished_at is not None
            expected = (
                "canceled"
                if counts["canceled"] == len(jobs)
                else "failed"
                if counts["failed"] == len(jobs)
                else "completed_with_failures"
                if counts["failed"]
                else "succeeded"
            )
            if batch.status != "canceled":  # a canceled batch keeps the jobs that finished
                assert batch.status == expected, (batch.status, counts)
            completed = list(
                session.scalars(
                    select(WebhookDelivery)
                    .where(
                        WebhookDelivery.batch_id == batch_id,
                        WebhookDelivery.event == "batch.completed",
                    )
                    .order_by(WebhookDelivery.created_at)
                )
            )
            assert len(completed) == 1 + world.reopened[batch_id], (
                f"batch.completed sent {len(completed)} times for a batch finished "
                f"{1 + world.reopened[batch_id]} times"
            )
            assert completed[-1].payload["data"]["counts"] == {
                state: count for state, count in counts.items() if count
            }
            for job in jobs:
                finals = session.scalars(
                    select(JobEvent.data["to"].astext).where(
                        JobEvent.job_id == job.id, JobEvent.kind == "state"
                    )
                ).all()
                sent = session.scalars(
                    select(WebhookDelivery.event).where(WebhookDelivery.job_id == job.id)
                ).all()
                assert Counter(sent) == Counter(
                    {
                        f"job.{state}": finals.count(state)
                        for state in ("succeeded", "failed")
                        if finals.count(state)
                    }
                )
        written_by = session.scalars(
            select(JobEvent.message).where(
                JobEvent.job_id.in_(world.job_ids), JobEvent.message.like("%lease %")
            )
        ).all()
    stale_writes = [
        message
        for message in written_by
        if message and any(str(lease) in message for lease in world.stale_leases)
    ]
    assert stale_writes == [], "stale workers' outcomes were recorded"
    assert world.stale_leases, "no worker ever went stale: the test proved nothing"
