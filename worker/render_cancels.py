"""Cancel on the backend the renders of jobs canceled through the API: nobody will download
them, and a render left running spends the account's render time for nothing."""

import logging
import uuid

from core.db import session_scope
from core.logging import log_fields
from core.models import Job, Tenant
from core.repo.batches import has_render_in_flight
from core.repo.transitions import add_event
from core.states import JobState
from worker.backend import client_for
from worker.nemo import errors
from worker.tokens import resolve_token

log = logging.getLogger("worker.render_cancels")


def cancel_renders(job_ids: list[str]) -> int:
    """Cancel each canceled job's render still in flight; how many the backend accepted.
    A render the backend cannot cancel any more (finished, gone) is noted on the job."""
    accepted = 0
    tokens: dict[uuid.UUID, str] = {}  # a canceled batch is one tenant's: resolve it once
    for job_id in job_ids:
        target = _render_to_cancel(uuid.UUID(job_id))
        if target is None:
            continue
        tenant_id, render_id = target
        try:
            if tenant_id not in tokens:
                tokens[tenant_id] = _token_of(tenant_id)
            client_for(tokens[tenant_id]).cancel_render(render_id)
        except errors.NemoError as error:
            why = f"the backend did not cancel render {render_id} ({error}); it may finish unused"
            log.info("job %s: %s", job_id, why, extra=log_fields(job_id=job_id))
            _note(job_id, "render_cancel_failed", why)
            continue
        _note(job_id, "render_canceled", f"render {render_id} canceled on the backend")
        accepted += 1
    return accepted


def _token_of(tenant_id: uuid.UUID) -> str:
    with session_scope() as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None  # the job row cascades from its tenant
        return resolve_token(tenant).value


def _render_to_cancel(job_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
    """(tenant, render id) of a canceled job whose render has not been downloaded."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None or job.state != JobState.CANCELED.value:
            return None  # retried meanwhile: its pipeline uses the render again
        if not has_render_in_flight(job.checkpoint):
            return None
        checkpoint = job.checkpoint
        return job.tenant_id, str(checkpoint.get("backend_render_id") or checkpoint["render_id"])


def _note(job_id: str, kind: str, message: str) -> None:
    with session_scope() as session:
        job = session.get(Job, uuid.UUID(job_id))
        if job is not None:
            add_event(session, job, kind, message, step=JobState.RENDER.value)
