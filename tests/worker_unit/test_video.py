"""A downloaded video is checked and its poster cut in one pass (`worker.video.inspect`)."""

import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image

from worker.video import NotAVideo, inspect


def _red_then_blue(path: Path) -> Path:
    """Two seconds at 25 fps: red for the first second, blue for the next."""
    colors = [f"color=c={name}:s=160x120:d=1:r=25" for name in ("red", "blue")]
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", colors[0], "-f", "lavfi", "-i", colors[1],
         "-filter_complex", "concat=n=2:v=1:a=0", "-c:v", "libx264", "-pix_fmt", "yuv420p",
         str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_a_video_is_described_and_its_poster_is_the_frame_at_one_second(tmp_path: Path) -> None:
    poster = tmp_path / "poster.jpg"
    facts = inspect(_red_then_blue(tmp_path / "video.mp4"), poster)
    assert (facts.codec, facts.width, facts.height) == ("h264", 160, 120)
    assert facts.duration_s == pytest.approx(2.0, abs=0.1)
    with Image.open(poster) as image:
        assert image.format == "JPEG" and image.size == (160, 120)
        red, _green, blue = image.convert("RGB").getpixel((80, 60))  # type: ignore[misc]
    assert blue > 200 and red < 60  # the second second's colour, not the first frame's


def test_a_page_that_is_not_a_video_is_refused(tmp_path: Path) -> None:
    page = tmp_path / "expired.mp4"
    page.write_text("<html><body>Link expired</body></html>")
    with pytest.raises(NotAVideo):
        inspect(page, tmp_path / "poster.jpg")
    assert not (tmp_path / "poster.jpg").exists()
