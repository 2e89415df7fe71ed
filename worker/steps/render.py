"""Export the timeline as a render and poll it until it is done.

The render id is stored before the render is posted; after an unknown outcome the step first
asks the backend for that id, and posts again (with a new id) only if the backend never got it.
"""

import time
import uuid
from contextlib import suppress
from datetime import UTC, datetime

from core.settings import get_settings
from core.states import JobState
from worker.nemo import errors
from worker.outcomes import Advance, Fail, Outcome, Restart, Wait
from worker.runner import StepContext
from worker.timeline import has_segments

MAX_RENDER_FAILURES = 1
MAX_RENDERS_LOST = 3


def new_render_id() -> str:
    return f"render_{int(time.time() * 1000)}_{uuid.uuid4().hex[:8]}"


def export_step(context: StepContext) -> Outcome:
    render_id = context.checkpoint.get("render_id")
    if render_id:
        try:
            status = context.client.render_status(str(render_id))
        except errors.RenderNotFound:
            pass  # the earlier post never reached the backend: post again with a new id
        else:
            return Advance(message=f"render {render_id} already posted ({status.status})")
    session_id = str(context.checkpoint["session_id"])
    state = context.client.session_state(session_id)
    if not has_segments(state.draft):
        return Fail("no_result", "The session has no timeline to export; retry the job.")
    assert state.draft is not None
    render_id = new_render_id()
    context.save(render_id=render_id, render_started_at=datetime.now(UTC).isoformat())
    with suppress(errors.RenderIdConflict):  # our own earlier post of this id: poll it
        context.client.export(render_id, session_id, state.draft)
    return Advance(message=f"render {render_id} posted")


def export_again_after_loss(context: StepContext, what: str) -> Outcome:
    """A render the backend lost (a restart, an expired output): export again, a few times."""
    lost = int(context.checkpoint.get("renders_lost") or 0) + 1
    if lost > MAX_RENDERS_LOST:
        return Fail("render_lost", f"The backend kept losing the render ({what}); retry the job.")
    return Restart(
        JobState.EXPORT,
        checkpoint={"renders_lost": lost},
        clear=("render_id", "output_url"),
        message=f"{what}; exporting again",
    )


def render_poll_step(context: StepContext) -> Outcome:
    settings = get_settings()
    render_id = str(context.checkpoint["render_id"])
    try:
        status = context.client.render_status(render_id)
    except errors.RenderNotFound:
        return export_again_after_loss(context, f"the backend no longer knows render {render_id}")
    if status.status == "completed" and status.output_url:
        return Advance(
            checkpoint={"output_url": status.output_url},
            message=f"render {render_id} completed",
        )
    if status.status == "failed":
        failures = int(context.checkpoint.get("render_failures") or 0) + 1
        reason = status.error or "no reason given"
        if failures > MAX_RENDER_FAILURES:
            return Fail(
                "render_failed",
                f"The backend failed to render the video twice (last: {reason}). "
                "Retry the job later.",
            )
        return Restart(
            JobState.EXPORT,
            checkpoint={"render_failures": failures},
            clear=("render_id",),
            message=f"render {render_id} failed ({reason}); exporting once more",
        )
    started = context.checkpoint.get("render_started_at")
    if started:
        elapsed = (datetime.now(UTC) - datetime.fromisoformat(str(started))).total_seconds()
        if elapsed > settings.render_timeout_s:
            return Fail(
                "render_timeout",
                f"The render did not finish within {settings.render_timeout_s:.0f} s; "
                "retry the job.",
            )
    return Wait(settings.nemo_poll_interval_s, checkpoint={"render_progress": status.progress})
