"""Figure 6: the emulator's render throughput against the same ffmpeg command run plainly.

The same 30-second 9:16 drafts (three product images with a slow zoom, a title and captions,
a sine music bed; a distinct title each, so no render comes from the cache) are rendered once
through the emulator's render routes and once by running the ffmpeg command the emulator
would build, directly, with the same parallelism (the emulator's `--render-workers`).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench.stack import wait_until
from tests.support.emulator_proc import start_emulator

TOKEN = "nmv_usr_render_bench"
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "X-Skill-Source": "bench",
    "X-Skill-Version": "0",
    "X-Skill-Platform": "unknown",
}
COLORS = ("orange", "teal", "purple")


@dataclass
class RenderFigure:
    scale: float
    videos: int
    emulator_per_min: float
    ffmpeg_per_min: float

    @property
    def ratio(self) -> float:
        """How many times slower the emulator is than plain ffmpeg (1.0 = as fast)."""
        return self.ffmpeg_per_min / self.emulator_per_min


def _draft(title: str) -> dict[str, Any]:
    images = [
        {"s": n * 10_000, "d": 10_000, "m": {"type": "image", "src": f"/media/{c}.png"}}
        for n, c in enumerate(COLORS)
    ]
    texts = [
        {"s": 0, "d": 3000, "m": {"type": "text", "text": title, "role": "title"}},
        {"s": 3000, "d": 13_000, "m": {"type": "text", "text": "Light and strong", "role": "c"}},
        {"s": 16_000, "d": 14_000, "m": {"type": "text", "text": "Made to last", "role": "c"}},
    ]
    music = [{"s": 0, "d": 30_000, "m": {"type": "generated", "tone_hz": 220, "volume": 0.2}}]
    return {
        "v": 1,
        "ar": "9:16",
        "w": 1080,
        "h": 1920,
        "d": 30_000,
        "title": title,
        "t": [{"tt": 0, "sg": images}, {"tt": 7, "sg": texts}, {"tt": 1, "sg": music}],
    }


def _media(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for color in COLORS:
        Image.new("RGB", (1200, 1600), color).save(directory / f"{color}.png")


def _through_emulator(data_dir: Path, scale: float, drafts: list[dict[str, Any]]) -> float:
    _media(data_dir / "media")
    emulator = start_emulator(
        data_dir, profile="ideal", render_scale=scale, tokens=(TOKEN,), extra_args=()
    )
    try:
        with httpx.Client(base_url=emulator.base_url, headers=HEADERS, timeout=30) as client:
            started = time.monotonic()
            ids = []
            for draft in drafts:
                render_id = uuid.uuid4().hex
                body = {"id": render_id, "sessionId": "bench", "draft": draft}
                client.post("/api/render/proxy/lambda", json=body).raise_for_status()
                ids.append(render_id)

            def all_done() -> bool:
                for render_id in ids:
                    data = client.get(f"/api/render/proxy/lambda/{render_id}").json()["data"]
                    if data["status"] == "failed":
                        raise RuntimeError(f"render failed: {data['error']}")
                    if data["status"] != "completed":
                        return False
                return True

            wait_until(all_done, 3600, "the renders", every_s=0.2)
            return time.monotonic() - started
    finally:
        emulator.stop()


def _plain_ffmpeg(workdir: Path, scale: float, drafts: list[dict[str, Any]], workers: int) -> float:
    import imageio_ffmpeg

    from emulator.ffmpeg_graph import build_command

    _media(workdir / "media")
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()

    def resolve(meta: dict[str, Any]) -> Path | None:
        return workdir / "media" / str(meta["src"]).rsplit("/", 1)[1] if "src" in meta else None

    commands = []
    for n, draft in enumerate(drafts):
        scratch = workdir / f"r{n}"
        scratch.mkdir()
        argv = build_command(
            ffmpeg, draft, scratch / "out.mp4", scale=scale, resolve=resolve, workdir=scratch
        )
        commands.append([a for a in argv if a not in ("-progress", "pipe:1")])
    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        for result in pool.map(lambda argv: subprocess.run(argv, capture_output=True), commands):
            if result.returncode != 0:
                raise RuntimeError(result.stderr.decode(errors="replace")[-500:])
    return time.monotonic() - started


def render_throughput(scale: float, videos: int, workers: int = 2) -> RenderFigure:
    drafts = [_draft(f"Product {uuid.uuid4().hex[:6]}") for _ in range(videos)]
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        emulated = _through_emulator(Path(tmp) / "emulator", scale, drafts)
        drafts = [_draft(f"Product {uuid.uuid4().hex[:6]}") for _ in range(videos)]
        plain = _plain_ffmpeg(Path(tmp) / "plain", scale, drafts, workers)
    return RenderFigure(
        scale=scale,
        videos=videos,
        emulator_per_min=videos * 60 / emulated,
        ffmpeg_per_min=videos * 60 / plain,
    )
