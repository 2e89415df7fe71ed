"""Media are recognised by their bytes: the accepted formats and nothing else."""

import io
import subprocess
import wave
from pathlib import Path

import pytest
from PIL import Image

from core.media import ACCEPTED_EXTENSIONS, UnsupportedMedia, sniff


def _image(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "extension"), [("JPEG", "jpg"), ("PNG", "png"), ("GIF", "gif"), ("WEBP", "webp")]
)
def test_images_are_recognised(fmt: str, extension: str) -> None:
    media = sniff(_image(fmt))
    assert (media.extension, media.kind) == (extension, "image")


def test_wav_is_audio() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\0" * 100)
    assert sniff(buffer.getvalue()).kind == "audio"


def _ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:
        return None


@pytest.mark.parametrize(
    ("extension", "kind", "source"),
    [
        ("mp4", "video", "color=c=red:s=16x16:d=0.2"),
        ("mov", "video", "color=c=red:s=16x16:d=0.2"),
        ("avi", "video", "color=c=red:s=16x16:d=0.2"),
        ("mkv", "video", "color=c=red:s=16x16:d=0.2"),
        ("webm", "video", "color=c=red:s=16x16:d=0.2"),
        ("mp3", "audio", "sine=d=0.2"),
        ("m4a", "audio", "sine=d=0.2"),
        ("aac", "audio", "sine=d=0.2"),
    ],
)
def test_containers_made_by_ffmpeg_are_recognised(
    tmp_path: Path, extension: str, kind: str, source: str
) -> None:
    ffmpeg = _ffmpeg()
    if ffmpeg is None:
        pytest.skip("ffmpeg is not available")
    path = tmp_path / f"sample.{extension}"
    codec = ["-c:v", "libvpx"] if extension == "webm" else []
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", source, *codec, str(path)],
        check=True,
        timeout=60,
    )
    media = sniff(path.read_bytes()[:8192])
    assert (media.extension, media.kind) == (extension, kind)


@pytest.mark.parametrize(
    "content",
    [b"", b"plain text pretending to be a png", b"%PDF-1.4\n", b"PK\x03\x04" + b"\0" * 40],
)
def test_anything_else_is_unsupported_and_the_error_lists_the_accepted_formats(
    content: bytes,
) -> None:
    with pytest.raises(UnsupportedMedia) as raised:
        sniff(content)
    for extension in ACCEPTED_EXTENSIONS:
        assert extension in str(raised.value)


def test_accepted_formats_match_the_backend_contract() -> None:
    assert set(ACCEPTED_EXTENSIONS) == (
        {"mp4", "mov", "avi", "webm", "mkv", "jpg", "png", "gif", "webp"}
        | {"mp3", "wav", "m4a", "aac"}
    )


def test_a_jobs_media_are_its_images_then_clips_then_music() -> None:
    from core.media import job_media

    job_input = {"images": ["i1", "i2"], "clips": ["c1"], "music": "m", "title": "Mug"}
    assert job_media(job_input) == ["i1", "i2", "c1", "m"]
    assert job_media({"images": None, "music": None}) == []
