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


def probe(path: Path) -> VideoProbe:
    import av

    try:
        with av.open(str(path)) as container:
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
            next(container.decode(video=0))  # it must actually decode
            return VideoProbe(
                codec=video.codec_context.name,
                duration_s=round(duration, 3),
                width=video.codec_context.width,
                height=video.codec_context.height,
                audio_codec=audio.codec_context.name if audio else None,
            )
    except NotAVideo:
        raise
    except (av.error.FFmpegError, StopIteration, OSError) as error:
        raise NotAVideo(f"the file could not be decoded as video ({error})") from error


def write_poster(video_path: Path, poster_path: Path, at_s: float = 1.0) -> None:
    """Save a JPEG of the frame nearest `at_s` seconds (or the first frame of a shorter video)."""
    import av

    with av.open(str(video_path)) as container:
        stream = container.streams.video[0]
        chosen = None
        for frame in container.decode(stream):
            chosen = frame
            if frame.time is not None and frame.time >= at_s:
                break
        if chosen is None:
            raise NotAVideo("the video has no frames")
        chosen.to_image().save(poster_path, format="JPEG", quality=85)
