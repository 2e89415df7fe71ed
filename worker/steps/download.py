"""Download the rendered MP4 into storage, check that it plays, and cut its poster frame.

A download refused (401/403/404/410: a signed URL that expired) or a body that is not a video
(an HTML or JSON page) asks the render's status again for a fresh URL, a few times.
"""

import os

from core.settings import get_settings
from core.states import JobState
from core.storage import Storage
from worker.nemo import errors
from worker.outcomes import Advance, Fail, Outcome, Restart
from worker.runner import StepContext
from worker.steps.render import export_again_after_loss
from worker.video import NotAVideo, probe, write_poster

MAX_URL_REFRESHES = 3


def refresh_output_url(context: StepContext, what: str) -> Outcome | None:
    """Poll the render again for a fresh URL; None once the refreshes are used up."""
    refreshes = int(context.checkpoint.get("url_refreshes") or 0) + 1
    if refreshes > MAX_URL_REFRESHES:
        return None
    return Restart(
        JobState.RENDER,
        checkpoint={"url_refreshes": refreshes},
        clear=("output_url",),
        message=f"{what}; asking the render for a fresh URL",
    )


def download_step(context: StepContext) -> Outcome:
    storage = Storage(get_settings().storage_dir)
    temporary = storage.temporary_path("outputs", ".mp4")
    try:
        try:
            size = context.client.download(str(context.checkpoint["output_url"]), temporary)
        except errors.OutputExpired as error:
            what = f"the download was refused (HTTP {error.http_status})"
            return refresh_output_url(context, what) or export_again_after_loss(
                context, "the rendered video could not be downloaded"
            )
        try:
            facts = probe(temporary)
        except NotAVideo as error:
            what = f"the download is not a video ({error})"
            return refresh_output_url(context, what) or Fail(
                "invalid_video",
                f"The backend's output is not a playable video: {error}. Retry the job.",
            )
        stored = storage.adopt("outputs", temporary, "mp4")
    finally:
        temporary.unlink(missing_ok=True)
    poster = storage.path_for("posters", stored.sha256, "jpg")
    if not poster.exists():
        poster.parent.mkdir(parents=True, exist_ok=True)
        poster_temporary = storage.temporary_path("posters", ".jpg")
        write_poster(stored.path, poster_temporary, at_s=min(1.0, facts.duration_s / 2))
        os.replace(poster_temporary, poster)  # named after the video, so one poster per video
    output = {
        "path": str(stored.path),
        "poster_path": str(poster),
        "sha256": stored.sha256,
        "size": size,
        **facts.as_dict(),
    }
    return Advance(
        fields={"output": output},
        to=JobState.SUCCEEDED,
        message=f"video downloaded ({size} bytes, {facts.duration_s:.1f} s, "
        f"{facts.width}x{facts.height} {facts.codec})",
    )
