"""The Celery tasks: thin entry points, each named, taking and returning a job id.

A step task runs its step function through the runner; when the job moved on to the next step
the chain goes on, otherwise (a wait, a failure, a duplicate message) the chain stops here and
the job's `next_attempt_at` or a new chain carries it on.
"""

from celery import Task

from core.states import JobState
from worker import (
    admission,
    credits,
    housekeeping,
    inputs,
    recovery,
    render_cancels,
    retention,
    schedules,
    webhooks,
)
from worker.celery_app import app
from worker.runner import StepFunction, run_step_reporting
from worker.steps.download import download_step
from worker.steps.fetch import fetch_step
from worker.steps.prompt import prompt_step
from worker.steps.render import export_step, render_poll_step
from worker.steps.setup import session_step, token_step, upload_step


def _step(task: Task, job_id: str, state: JobState, function: StepFunction) -> str:
    report = run_step_reporting(job_id, state, function)
    if report.advanced:
        return job_id
    # Stop the chain here but end the task as a success, so Flower shows it finished; the job
    # is carried on from Postgres (a due wait, a new chain, or nothing if final). The result,
    # which no next task reads now, tells Flower's task info when the job waits on 429s.
    task.request.chain = None
    task.request.callbacks = None
    if report.throttled_since is not None:
        return f"{job_id} throttled since {report.throttled_since.isoformat()}"
    return job_id


@app.task(name="worker.token", bind=True)
def token(self: Task, job_id: str) -> str:
    return _step(self, job_id, JobState.TOKEN, token_step)


@app.task(name="worker.fetch", bind=True)
def fetch(self: Task, job_id: str) -> str:
    return _step(self, job_id, JobState.FETCH, fetch_step)


@app.task(name="worker.session", bind=True)
def session(self: Task, job_id: str) -> str:
    return _step(self, job_id, JobState.SESSION, session_step)


@app.task(name="worker.upload", bind=True)
def upload(self: Task, job_id: str) -> str:
    return _step(self, job_id, JobState.UPLOAD, upload_step)


@app.task(name="worker.prompt", bind=True)
def prompt(self: Task, job_id: str) -> str:
    return _step(self, job_id, JobState.PROMPT, prompt_step)


@app.task(name="worker.export", bind=True)
def export(self: Task, job_id: str) -> str:
    return _step(self, job_id, JobState.EXPORT, export_step)


@app.task(name="worker.render_poll", bind=True)
def render_poll(self: Task, job_id: str) -> str:
    return _step(self, job_id, JobState.RENDER, render_poll_step)


@app.task(name="worker.download", bind=True)
def download(self: Task, job_id: str) -> str:
    return _step(self, job_id, JobState.DOWNLOAD, download_step)


@app.task(name="worker.fetch_inputs")
def fetch_inputs(batch_id: str) -> int:
    return inputs.fetch_batch_inputs(batch_id)


@app.task(name="worker.dispatch")
def dispatch(**_: object) -> int:
    return admission.dispatch()


@app.task(name="worker.tick")
def tick() -> dict[str, int]:
    return housekeeping.tick()


@app.task(name="worker.claim_due")
def claim_due() -> int:
    return recovery.claim_due()


@app.task(name="worker.sweep")
def sweep() -> int:
    return recovery.sweep()


@app.task(name="worker.check_credits")
def check_credits() -> int:
    return len(credits.check_paused_tenants())


@app.task(name="worker.deliver_webhook")
def deliver_webhook(delivery_id: str, attempts_before: int = 0) -> bool:
    return webhooks.deliver(delivery_id, attempts_before)


@app.task(name="worker.claim_webhooks")
def claim_webhooks() -> int:
    return webhooks.claim_due()


@app.task(name="worker.cancel_renders")
def cancel_renders(job_ids: list[str]) -> int:
    return render_cancels.cancel_renders(job_ids)


@app.task(name="worker.apply_retention")
def apply_retention() -> str:
    return retention.apply_configured()


@app.task(name="worker.fire_schedules")
def fire_schedules(**_: object) -> int:
    return schedules.fire_due()
