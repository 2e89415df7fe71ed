"""Every pipeline step run twice (and re-run after a lost outcome) makes one backend side effect.

No Celery workers here: each step is called in-process through `worker.runner.run_step`, against
the emulator over real HTTP and the stack's own Postgres and Redis. The emulator's stats count
the side effects (sessions, uploads, messages, renders) by route (RELIABILITY.md, "Proving it").
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import update

from core.db import session_scope
from core.models import Job, Tenant
from core.repo.transitions import transition
from core.states import PIPELINE, JobState
from tests.support.waiting import wait_for
from tests.worker.helpers import ApiUser, api_user, describe
from tests.worker.stack import Stack, running_stack
from worker.backend import client_for, reset_clients
from worker.runner import StepContext, StepFunction, run_step, saver_for
from worker.steps.download import download_step
from worker.steps.fetch import fetch_step
from worker.steps.prompt import prompt_step
from worker.steps.render import export_step, render_poll_step
from worker.steps.setup import session_step, token_step, upload_step
from worker.tokens import resolve_token

STEPS: dict[JobState, StepFunction] = {
    JobState.TOKEN: token_step,
    JobState.FETCH: fetch_step,
    JobState.SESSION: session_step,
    JobState.UPLOAD: upload_step,
    JobState.PROMPT: prompt_step,
    JobState.EXPORT: export_step,
    JobState.RENDER: render_poll_step,
    JobState.DOWNLOAD: download_step,
}

ANON_TOKEN = "POST /api/auth/anonymous-token"
CREATE_SESSION = "POST /api/tasks/{user}/with-session/nemo_agent"
UPLOAD = "POST /api/upload-video/nemo_agent/{user}/{session_id}"
RUN_SSE = "POST /run_sse"
STATE = "GET /api/state/nemo_agent/{user}/{session_id}/latest"
POST_RENDER = "POST /api/render/proxy/lambda"
RENDER_STATUS = "GET /api/render/proxy/lambda/{render_id}"
DOWNLOAD = "GET /api/render/proxy/{render_id}/download"


@dataclass
class Harness:
    stack: Stack
    user: ApiUser

    def stats(self) -> dict[str, Any]:
        return self.stack.emulator.stats()

    def calls(self, route: str) -> int:
        """Requests the emulator answered on a route template, whatever the answer."""
        return sum(self.stats()["requests"].get(route, {}).values())

    def new_job(self, images: int = 1) -> uuid.UUID:
        """One job through the API, admitted by hand (no dispatcher runs here)."""
        assets = [self.user.upload_image(color) for color in ("red", "green", "blue")[:images]]
        item = {
            "title": "Trail bottle",
            "description": "Keeps water cold for a day.",
            "images": assets,
            "options": {"aspect_ratio": "1:1", "duration_s": 5},
        }
        batch = self.user.post("/v1/batches", json={"items": [item]})
        with session_scope() as session:
            job = session.query(Job).filter(Job.batch_id == uuid.UUID(batch["id"])).one()
            transition(session, job, JobState.ADMITTED)
            return job.id

    def run_until_done(self, job_id: uuid.UUID, step: JobState, timeout_s: float = 30) -> None:
        """Run a step (again and again while it waits) until the job leaves it."""

        def left() -> bool:
            run_step(job_id, step, STEPS[step])
            return job(job_id).state != step.value

        wait_for(left, timeout_s, f"job to leave {step}", every_s=0.2)

    def advance_to(self, job_id: uuid.UUID, step: JobState) -> None:
        """Run every step before `step`, in order, as the chain would."""
        for earlier in PIPELINE[1 : PIPELINE.index(step)]:
            self.run_until_done(job_id, earlier)
        assert job(job_id).state == step.value, describe([job(job_id)])


def job(job_id: uuid.UUID) -> Job:
    with session_scope() as session:
        found = session.get(Job, job_id)
        assert found is not None
        return found


def rewind(job_id: uuid.UUID, step: JobState, **checkpoint: Any) -> None:
    """Put the job back in `step` with its checkpoint kept (and `checkpoint` merged in): what a
    re-driven step finds after a crash, a lost message or a redelivery."""
    with session_scope() as session:
        found = session.get(Job, job_id, with_for_update=True)
        assert found is not None
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                state=step.value,
                checkpoint={**found.checkpoint, **checkpoint},
                next_attempt_at=None,
                lease_expires_at=None,
                finished_at=None,
            )
        )


def context_for(job_id: uuid.UUID, step: JobState) -> StepContext:
    """What the runner hands a step function, for calling it directly (its outcome then never
    recorded, as if the worker died right after the function returned). It holds a lease
    token of its own, as a claim would give it, and no lease time: the next claim is free."""
    lease = uuid.uuid4()
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_token=lease))
        found = session.get(Job, job_id)
        assert found is not None and found.state == step.value
        tenant = session.get(Tenant, found.tenant_id)
        assert tenant is not None
        token = resolve_token(tenant)
        return StepContext(
            job_id=job_id,
            step=step,
            step_attempts=found.step_attempts,
            tenant_id=found.tenant_id,
            input=dict(found.input),
            options=dict(found.options),
            checkpoint=dict(found.checkpoint),
            token=token,
            client=client_for(token.value),
            save_checkpoint=saver_for(job_id, lease),
            lease_s=60.0,
        )


@contextmanager
def harness(tmp_path: Path, *, registered: bool = True) -> Iterator[Harness]:
    emulator_args = ("--anon-credits", "100000") if not registered else ()
    with (
        running_stack(
            tmp_path, workers=False, registered=registered, emulator_args=emulator_args
        ) as stack,
        api_user() as user,
    ):
        reset_clients()  # clients cached by an earlier test point at another emulator
        try:
            yield Harness(stack, user)
        finally:
            reset_clients()


def test_token_step_twice_acquires_one_anonymous_token(tmp_path: Path) -> None:
    with harness(tmp_path, registered=False) as h:
        job_id = h.new_job()

        assert run_step(job_id, JobState.TOKEN, token_step) is True
        assert run_step(job_id, JobState.TOKEN, token_step) is False
        rewind(job_id, JobState.TOKEN)
        assert run_step(job_id, JobState.TOKEN, token_step) is True

        assert h.calls(ANON_TOKEN) == 1
        assert job(job_id).checkpoint["token_source"] == "anonymous"


def test_session_step_twice_creates_one_session(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        job_id = h.new_job()
        h.advance_to(job_id, JobState.SESSION)

        assert run_step(job_id, JobState.SESSION, session_step) is True
        assert run_step(job_id, JobState.SESSION, session_step) is False
        session_id = job(job_id).checkpoint["session_id"]
        rewind(job_id, JobState.SESSION)
        assert run_step(job_id, JobState.SESSION, session_step) is True

        assert h.calls(CREATE_SESSION) == 1
        assert h.stats()["sessions"] == 1
        assert job(job_id).checkpoint["session_id"] == session_id


def test_upload_step_twice_uploads_each_medium_once(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        job_id = h.new_job(images=2)
        h.advance_to(job_id, JobState.UPLOAD)

        # The worker dies after uploading, before the outcome is recorded: the uploads were
        # checkpointed as soon as the backend took them, so the re-run uploads nothing.
        upload_step(context_for(job_id, JobState.UPLOAD))
        assert h.calls(UPLOAD) == 1  # both images in one request
        assert run_step(job_id, JobState.UPLOAD, upload_step) is True
        assert run_step(job_id, JobState.UPLOAD, upload_step) is False
        rewind(job_id, JobState.UPLOAD)
        assert run_step(job_id, JobState.UPLOAD, upload_step) is True

        assert h.calls(UPLOAD) == 1
        assert len(job(job_id).checkpoint["uploads"]) == 2


def test_prompt_step_twice_sends_one_message(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        job_id = h.new_job()
        h.advance_to(job_id, JobState.PROMPT)

        assert run_step(job_id, JobState.PROMPT, prompt_step) is True
        assert run_step(job_id, JobState.PROMPT, prompt_step) is False
        rewind(job_id, JobState.PROMPT)
        assert run_step(job_id, JobState.PROMPT, prompt_step) is True

        assert h.calls(RUN_SSE) == 1
        assert h.stats()["turns"]["started"] == 1


def test_prompt_send_with_a_lost_outcome_is_verified_not_resent(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        job_id = h.new_job()
        h.advance_to(job_id, JobState.PROMPT)
        assert run_step(job_id, JobState.PROMPT, prompt_step) is True

        # As the checkpoint stands when the worker dies after the send but before its reply was
        # recorded: the message is "sent", with the state snapshot taken before it.
        [record] = job(job_id).checkpoint["messages"]
        assert record["status"] == "done" and record["sends"] == 1
        lost = {k: v for k, v in record.items() if k not in ("verified", "reply")}
        rewind(job_id, JobState.PROMPT, messages=[{**lost, "status": "sent"}])
        state_reads = h.calls(STATE)

        assert run_step(job_id, JobState.PROMPT, prompt_step) is True

        assert h.calls(RUN_SSE) == 1
        assert h.calls(STATE) > state_reads  # verified against the session state
        [record] = job(job_id).checkpoint["messages"]
        assert record["status"] == "done" and record["verified"] == "state"
        assert record["sends"] == 1
        assert job(job_id).state == JobState.EXPORT.value


def _exported(job_id: uuid.UUID) -> bool:
    """Run the export step; True if the job moved on to `render`, its first poll due one poll
    interval after the post (the chain stops there: the claimer sends the poll when due)."""
    run_step(job_id, JobState.EXPORT, export_step)
    current = job(job_id)
    return current.state == JobState.RENDER.value and current.next_attempt_at is not None


def test_export_step_twice_posts_one_render(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        job_id = h.new_job()
        h.advance_to(job_id, JobState.EXPORT)

        assert _exported(job_id)
        assert run_step(job_id, JobState.EXPORT, export_step) is False
        render_id = job(job_id).checkpoint["render_id"]
        rewind(job_id, JobState.EXPORT)
        assert _exported(job_id)

        assert h.stats()["renders"]["posted"] == 1
        assert h.calls(POST_RENDER) == 1
        assert h.stats()["renders"]["rejected_reused_id"] == 0
        assert job(job_id).checkpoint["render_id"] == render_id


def test_export_after_a_crash_between_post_and_outcome_asks_before_posting(
    tmp_path: Path,
) -> None:
    with harness(tmp_path) as h:
        job_id = h.new_job()
        h.advance_to(job_id, JobState.EXPORT)

        # The render is posted and its id checkpointed, then the worker dies: no outcome.
        export_step(context_for(job_id, JobState.EXPORT))
        render_id = job(job_id).checkpoint["render_id"]
        assert job(job_id).state == JobState.EXPORT.value
        assert h.stats()["renders"]["posted"] == 1
        status_reads = h.calls(RENDER_STATUS)

        assert _exported(job_id)

        assert h.stats()["renders"]["posted"] == 1
        assert h.calls(POST_RENDER) == 1
        assert h.calls(RENDER_STATUS) == status_reads + 1  # asked for the stored id first
        assert job(job_id).checkpoint["render_id"] == render_id
        h.run_until_done(job_id, JobState.RENDER)
        h.run_until_done(job_id, JobState.DOWNLOAD)
        assert job(job_id).state == JobState.SUCCEEDED.value
        assert h.stats()["renders"]["completed"] == 1


def test_export_whose_post_never_arrived_posts_once_with_a_new_id(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        job_id = h.new_job()
        h.advance_to(job_id, JobState.EXPORT)
        # The id was stored, then the worker died before the post left: the backend never saw it.
        rewind(job_id, JobState.EXPORT, render_id="render_1_neverposted")

        assert _exported(job_id)

        assert h.stats()["renders"]["posted"] == 1
        assert job(job_id).checkpoint["render_id"] != "render_1_neverposted"


def test_render_poll_twice_posts_nothing_and_polls_once_when_done(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        job_id = h.new_job()
        h.advance_to(job_id, JobState.RENDER)

        h.run_until_done(job_id, JobState.RENDER)
        polls = h.calls(RENDER_STATUS)
        assert run_step(job_id, JobState.RENDER, render_poll_step) is False
        assert h.calls(RENDER_STATUS) == polls
        output_url = job(job_id).checkpoint["output_url"]
        rewind(job_id, JobState.RENDER)
        assert run_step(job_id, JobState.RENDER, render_poll_step) is True

        assert h.calls(RENDER_STATUS) == polls + 1
        assert h.stats()["renders"]["posted"] == 1
        assert job(job_id).checkpoint["output_url"] == output_url
        assert job(job_id).state == JobState.DOWNLOAD.value


def test_download_step_twice_stores_one_video(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        job_id = h.new_job()
        h.advance_to(job_id, JobState.DOWNLOAD)

        assert run_step(job_id, JobState.DOWNLOAD, download_step) is False  # final: no next step
        assert job(job_id).state == JobState.SUCCEEDED.value
        downloads = h.calls(DOWNLOAD)
        assert downloads == 1
        assert run_step(job_id, JobState.DOWNLOAD, download_step) is False
        assert h.calls(DOWNLOAD) == downloads
        first = job(job_id).output
        assert first is not None

        # Re-driven after its outcome was recorded: the same content lands on the same file.
        rewind(job_id, JobState.DOWNLOAD)
        run_step(job_id, JobState.DOWNLOAD, download_step)

        again = job(job_id)
        assert again.state == JobState.SUCCEEDED.value
        assert again.output is not None
        assert again.output["sha256"] == first["sha256"]
        assert again.output["path"] == first["path"]
        outputs = [p for p in (tmp_path / "storage").rglob("*.mp4") if "outputs" in p.parts]
        assert len(outputs) == 1, outputs
        assert h.stats()["renders"]["posted"] == 1
