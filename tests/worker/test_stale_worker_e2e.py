"""A job canceled and retried while its old worker is still mid-stream: the old worker's writes
are fenced off by its lease token, and the new run ends normally (DESIGN.md, "The job").

The emulator answers each turn after a few seconds over real HTTP; the steps run in-process
through `worker.runner`, as a worker runs them, against the stack's Postgres and Redis.
"""

import json
import threading
import uuid
from pathlib import Path

from sqlalchemy import select

from core.db import session_scope
from core.models import JobEvent
from core.states import JobState
from tests.support.waiting import wait_for
from tests.worker.helpers import api_user
from tests.worker.stack import running_stack
from tests.worker.test_step_idempotency import RUN_SSE, STEPS, Harness, job
from worker.admission import admit_jobs
from worker.backend import reset_clients
from worker.runner import StepReport, run_step_reporting

REPLY_S = 3.0


def _events(job_id: uuid.UUID) -> list[tuple[str, str, str | None]]:
    with session_scope() as session:
        rows = session.execute(
            select(JobEvent.kind, JobEvent.step, JobEvent.message)
            .where(JobEvent.job_id == job_id)
            .order_by(JobEvent.id)
        )
        return [(kind, step, message) for kind, step, message in rows]


def test_a_job_canceled_and_retried_mid_stream_ignores_its_old_worker(tmp_path: Path) -> None:
    profile = tmp_path / "slow-replies.json"
    profile.write_text(json.dumps({"name": "slow-replies", "reply_delay_s": [REPLY_S, REPLY_S]}))
    with (
        running_stack(tmp_path, workers=False, profile=str(profile), time_scale=1.0) as stack,
        api_user() as user,
    ):
        reset_clients()
        try:
            h = Harness(stack, user)
            job_id = h.new_job()
            h.advance_to(job_id, JobState.PROMPT)

            old: list[StepReport] = []
            stream = threading.Thread(
                target=lambda: old.append(
                    run_step_reporting(job_id, JobState.PROMPT, STEPS[JobState.PROMPT])
                )
            )
            stream.start()
            wait_for(lambda: h.calls(RUN_SSE) == 1, 10, "the old worker's stream to start", 0.05)
            assert job(job_id).lease_token is not None

            user.post(f"/v1/jobs/{job_id}/cancel")
            assert job(job_id).lease_token is None, "a cancel leaves the old lease in place"
            user.post(f"/v1/jobs/{job_id}/retry")
            assert admit_jobs() >= 1  # other tests' queued jobs may be admitted with it
            assert job(job_id).state == JobState.ADMITTED
            for step in (JobState.TOKEN, JobState.FETCH, JobState.SESSION, JobState.UPLOAD):
                h.run_until_done(job_id, step)
            assert stream.is_alive(), "the old stream ended before the new run caught up"
            retried_at = len(_events(job_id))

            stream.join(timeout=REPLY_S * 10)
            assert not stream.is_alive()
            # The old worker's reply came in; its checkpoint save and outcome were dropped.
            assert old == [StepReport(False)]
            now = job(job_id)
            assert now.state == JobState.PROMPT and now.lease_token is None
            assert "messages" not in now.checkpoint, "the old worker's progress landed"
            assert _events(job_id)[retried_at:] == [], "the old worker's outcome was recorded"

            for step in (JobState.PROMPT, JobState.EXPORT, JobState.RENDER, JobState.DOWNLOAD):
                h.run_until_done(job_id, step, timeout_s=60)
            final = job(job_id)
            assert final.state == JobState.SUCCEEDED, final.error_message
            assert final.checkpoint["messages"][0]["sends"] == 1
            after_retry = _events(job_id)[retried_at:]
            assert [e[:2] for e in after_retry].count(("step_done", "prompt")) == 1
        finally:
            reset_clients()
