"""Download the rendered MP4 into storage, check that it plays, and cut its poster frame."""

import os

from core.settings import get_settings
from core.states import JobState
from core.storage import Storage
from worker.nemo import errors
from worker.outcomes import Advance, Fail, Outcome
from worker.runner import StepContext
from worker.steps.render import export_again_after_loss
from worker.video import NotAVideo, probe, write_poster


def download_step(context: StepContext) -> Outcome:
    storage = Storage(get_settings().storage_dir)
    temporary = storage.temporary_path("outputs", ".mp4")
    try:
        try:
            size = context.client.download(str(context.checkpoint["output_url"]), temporary)
        except errors.RenderNotFound:
            return export_again_after_loss(context, "the rendered video is gone from the backend")
        try:
            facts = probe(temporary)
        except NotAVideo as error:
            return Fail(
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
