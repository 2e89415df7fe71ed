"""Probe a downloaded video with PyAV and cut a poster frame from it."""

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# PyAV is imported inside the functions: its libraries add ~20 MB to every process that loads
# them, and of all the worker processes only the one running a download needs them.


class NotAVideo(ValueError):
    """The file is not a playable video."""


@dataclass(frozen=True)
class VideoProbe:
    codec: str
    duration_s: float
    width: int
    height: int
    audio_codec: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


POSTER_AT_S = 1.0


def inspect(video_path: Path, poster_path: Path) -> VideoProbe:
    """Check that the file plays and save its poster, a JPEG of the frame at 1 s (half-way
    through a shorter video), in one pass: one open and one decode where a probe and a poster
    used to cost two. Only reference frames are decoded, on one thread: a poster needs one
    frame, and the frames no other frame refers to were a third of the decoding (bench figure
    1); the poster is the first reference frame at or after its time. Raises `NotAVideo`."""
    import av

    try:
        with av.open(str(video_path)) as container:
            if not container.streams.video:
                raise NotAVideo("the file has no video stream")
            video = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            duration = (
                float(container.duration) / av.time_base
                if container.duration
                else float(video.duration * video.time_base)
                if video.duration and video.time_base
                else 0.0
            )
            video.codec_context.thread_count = 1
            video.codec_context.skip_frame = "NONREF"
            poster_at = min(POSTER_AT_S, duration / 2)
            chosen = None
            for frame in container.decode(video):  # the first frame proves that it decodes
                chosen = frame
                if frame.time is not None and frame.time >= poster_at:
                    break
            if chosen is None:
                raise NotAVideo("the video has no frames")
            facts = VideoProbe(
                codec=video.codec_context.name,
                duration_s=round(duration, 3),
                width=video.codec_context.width,
                height=video.codec_context.height,
                audio_codec=audio.codec_context.name if audio else None,
            )
            poster = chosen.to_image()
    except NotAVideo:
        raise
    except (av.error.FFmpegError, OSError) as error:
        raise NotAVideo(f"the file could not be decoded as video ({error})") from error
    poster.save(poster_path, format="JPEG", quality=85)  # a full disk is not a bad video
    return facts
