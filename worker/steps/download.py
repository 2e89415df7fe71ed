"""Download the rendered MP4 into storage, check that it plays, and cut its poster frame.

A download refused (401/403/404/410: a signed URL that expired) or a body that is not a video
(an HTML or JSON page) asks the render's status again for a fresh URL, a few times.
"""

from core.repo.storage_usage import QuotaExceeded
from core.states import JobState
from core.storage import disk_full, key_for, open_storage
from worker.nemo import errors
from worker.outcomes import Advance, Fail, Outcome, Restart
from worker.runner import StepContext
from worker.steps.render import export_again_after_loss
from worker.steps.storage_room import (
    CHARGED,
    DISK_REMEDY,
    DISK_WORDS,
    QUOTA_REMEDY,
    ROOM_FOUND,
    WAITING_SINCE,
    charge_output,
    quota_words,
    usage_now,
    wait_for_room,
)
from worker.video import NotAVideo, inspect

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
    """The video stored, its poster cut and the tenant charged for both; or a wait for room
    (`worker.steps.storage_room`): over quota, or this host's disk full."""
    usage = usage_now(context)
    held = int(context.checkpoint.get(CHARGED) or 0)  # charged by an earlier run of the step
    if usage.quota is not None and usage.used - held >= usage.quota:  # no room: no download
        return wait_for_room(context, "storage_quota_exceeded", quota_words(usage), QUOTA_REMEDY)
    try:
        return _store_video(context)
    except QuotaExceeded as error:
        return wait_for_room(
            context,
            "storage_quota_exceeded",
            quota_words(error.usage, error.size),
            QUOTA_REMEDY,
        )
    except OSError as error:
        if not disk_full(error):
            raise
        return wait_for_room(context, "insufficient_storage", DISK_WORDS, DISK_REMEDY)


def _store_video(context: StepContext) -> Outcome:
    storage = open_storage()
    temporary = storage.temporary_path(".mp4")
    poster_temporary = storage.temporary_path(".jpg")
    try:
        try:
            size = context.client.download(str(context.checkpoint["output_url"]), temporary)
        except errors.OutputExpired as error:
            what = f"the download was refused (HTTP {error.http_status})"
            return refresh_output_url(context, what) or export_again_after_loss(
                context, "the rendered video could not be downloaded"
            )
        try:
            facts = inspect(temporary, poster_temporary)
        except NotAVideo as error:
            what = f"the download is not a video ({error})"
            return refresh_output_url(context, what) or Fail(
                "invalid_video",
                f"The backend's output is not a playable video: {error}. Retry the job.",
            )
        stored_bytes = size + poster_temporary.stat().st_size
        charge_output(context, stored_bytes)  # before the files take room: QuotaExceeded
        stored = storage.adopt("outputs", temporary, "mp4")
        poster = key_for("posters", stored.sha256, "jpg")  # named after the video: one each
        storage.adopt_as(poster, poster_temporary)
    finally:
        temporary.unlink(missing_ok=True)
        poster_temporary.unlink(missing_ok=True)
    output = {
        "path": stored.key,
        "poster_path": poster,
        "sha256": stored.sha256,
        "size": size,
        "stored_bytes": stored_bytes,
        **facts.as_dict(),
    }
    return Advance(
        fields={"output": output, **ROOM_FOUND},
        checkpoint={WAITING_SINCE: None, CHARGED: stored_bytes},
        to=JobState.SUCCEEDED,
        message=f"video downloaded ({size} bytes, {facts.duration_s:.1f} s, "
        f"{facts.width}x{facts.height} {facts.codec})",
    )
