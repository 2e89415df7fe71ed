"""Export the timeline as a render and poll it until it is done.

The render id is stored before the render is posted; after an unknown outcome the step first
asks the backend for that id, and posts again (with a new id) only if the backend never got it.
"""

import time
import uuid
from datetime import UTC, datetime
from typing import Any

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


def polled_render_id(checkpoint: dict[str, Any]) -> str:
    """The id to poll: the backend's own when it assigned one, else the one we posted under."""
    return str(checkpoint.get("backend_render_id") or checkpoint["render_id"])


def export_step(context: StepContext) -> Outcome:
    render_id = context.checkpoint.get("render_id")
    if render_id:
        try:
            status = context.client.render_status(polled_render_id(context.checkpoint))
        except errors.RenderNotFound:
            pass  # the earlier post never reached the backend: post again with a new id
        else:
            return Advance(
                message=f"render {render_id} already posted ({status.status})",
                next_in_s=_first_poll_due(context),
            )
    session_id = str(context.checkpoint["session_id"])
    draft = _draft_to_export(context, session_id)
    if draft is None:
        return Fail("no_result", "The session has no timeline to export; retry the job.")
    render_id = new_render_id()
    context.save(render_id=render_id, render_started_at=datetime.now(UTC).isoformat())
    done: dict[str, Any] = {"draft": None}  # posted: the copy the prompt step left is not needed
    try:
        posted = context.client.export(render_id, session_id, draft)
    except errors.RenderIdConflict:  # our own earlier post of this id: poll it
        posted_as = render_id
    else:
        posted_as = posted.id
    if posted_as != render_id:
        done["backend_render_id"] = posted_as
    message = f"render {render_id} posted" + (
        f"; the backend calls it {posted_as}" if posted_as != render_id else ""
    )
    return Advance(checkpoint=done, message=message, next_in_s=_first_poll_due(context))


def _first_poll_due(context: StepContext) -> float | None:
    """A render takes 30-90 s: its first poll is due one interval after the post, and the job
    waits for it in Postgres rather than in a poll task that would only wait (`Advance`)."""
    return _first_poll_in(context.checkpoint, get_settings().nemo_poll_interval_s) or None


def _draft_to_export(context: StepContext, session_id: str) -> dict[str, Any] | None:
    """The draft the prompt step verified and left in the checkpoint, else the session's own
    (a re-export after a failed or lost render)."""
    kept = context.checkpoint.get("draft")
    if isinstance(kept, dict) and has_segments(kept):
        return kept
    state = context.client.session_state(session_id)
    return state.draft if has_segments(state.draft) else None


def export_again_after_loss(context: StepContext, what: str) -> Outcome:
    """A render the backend lost (a restart, an expired output): export again, a few times."""
    lost = int(context.checkpoint.get("renders_lost") or 0) + 1
    if lost > MAX_RENDERS_LOST:
        return Fail("render_lost", f"The backend kept losing the render ({what}); retry the job.")
    return Restart(
        JobState.EXPORT,
        checkpoint={"renders_lost": lost},
        clear=("render_id", "backend_render_id", "output_url", "url_refreshes", "render_progress"),
        message=f"{what}; exporting again",
    )


def render_poll_step(context: StepContext) -> Outcome:
    settings = get_settings()
    render_id = polled_render_id(context.checkpoint)
    first_poll_in = _first_poll_in(context.checkpoint, settings.nemo_poll_interval_s)
    if first_poll_in > 0:
        return Wait(first_poll_in)  # a render takes 30-90 s: asking at once only costs a request
    try:
        status = context.client.render_status(render_id)
    except errors.RenderNotFound:
        return export_again_after_loss(context, f"the backend no longer knows render {render_id}")
    if status.status == "completed":
        # No URL in the answer: the backend's own download route serves the finished video.
        url = status.output_url or context.client.render_download_url(render_id)
        return Advance(checkpoint={"output_url": url}, message=f"render {render_id} completed")
    if status.status in ("failed", "canceled"):
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
            clear=("render_id", "backend_render_id", "url_refreshes", "render_progress"),
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


def _first_poll_in(checkpoint: dict[str, Any], interval_s: float) -> float:
    """Seconds until the first poll of a render is due: one interval after it was posted."""
    started = checkpoint.get("render_started_at")
    if not started or "render_progress" in checkpoint:
        return 0.0
    elapsed = (datetime.now(UTC) - datetime.fromisoformat(str(started))).total_seconds()
    return max(0.0, interval_s - elapsed)
