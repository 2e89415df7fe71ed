"""Runs ffmpeg renders in a bounded pool, caching one file per (draft, scale)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import imageio_ffmpeg

from emulator.draft import draft_hash
from emulator.ffmpeg_graph import MediaResolver, build_command, total_ms

ProgressCallback = Callable[[float], None]


class RenderError(Exception):
    """ffmpeg failed; the message carries its last error lines."""


class Renderer:
    def __init__(self, out_dir: Path, *, scale: float, workers: int, resolve: MediaResolver):
        self.out_dir = out_dir
        self.scale = scale
        self.resolve = resolve
        self.ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        self._pool = asyncio.Semaphore(max(1, workers))
        self._inflight: dict[str, asyncio.Future[Path]] = {}
        self.cache_hits = 0

    def cache_key(self, draft: dict[str, Any]) -> str:
        return hashlib.sha256(f"{draft_hash(draft)}|{self.scale}".encode()).hexdigest()[:32]

    async def render(self, draft: dict[str, Any], progress: ProgressCallback) -> Path:
        """The MP4 for `draft`: cached, shared with an identical render in flight, or made now."""
        key = self.cache_key(draft)
        target = self.out_dir / f"{key}.mp4"
        if target.exists():
            self.cache_hits += 1
            progress(1.0)
            return target
        if key in self._inflight:
            self.cache_hits += 1
            return await asyncio.shield(self._inflight[key])
        future: asyncio.Future[Path] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            await self._run(draft, target, progress)
            future.set_result(target)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked as retrieved, so asyncio does not log it
            raise
        finally:
            del self._inflight[key]
        return target

    async def _run(self, draft: dict[str, Any], target: Path, progress: ProgressCallback) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="render-", dir=self.out_dir))
        partial = workdir / "out.mp4"
        try:
            async with self._pool:
                argv = build_command(
                    self.ffmpeg,
                    draft,
                    partial,
                    scale=self.scale,
                    resolve=self.resolve,
                    workdir=workdir,
                )
                await self._exec(argv, total_ms(draft) / 1000, progress)
            os.replace(partial, target)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    async def _exec(self, argv: list[str], seconds: float, progress: ProgressCallback) -> None:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        assert process.stdout is not None and process.stderr is not None
        stderr_task = asyncio.ensure_future(process.stderr.read())
        try:
            async for line in process.stdout:
                key, _, value = line.decode(errors="replace").strip().partition("=")
                if key == "out_time_us" and value.isdigit() and seconds > 0:
                    progress(min(1.0, int(value) / 1_000_000 / seconds))
            code = await process.wait()
        except asyncio.CancelledError:
            if process.returncode is None:
                process.kill()
                await process.wait()
            raise
        errors = (await stderr_task).decode(errors="replace").strip()
        if code != 0:
            raise RenderError(f"ffmpeg exited {code}: {errors[-500:]}")
