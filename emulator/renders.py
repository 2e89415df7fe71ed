"""Render jobs: pending -> processing (progress) -> completed | failed, in the background."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.config import EmulatorConfig
from emulator.draft import draft_hash
from emulator.faults import FaultInjector
from emulator.render import Renderer
from emulator.state import iso
from emulator.stats import Stats

TICK_S = 0.2
PENDING_SHARE = 0.1


@dataclass
class RenderJob:
    id: str
    session_id: str
    draft: dict[str, Any]
    draft_hash: str
    delay_s: float
    will_fail: bool
    status: str = "pending"
    progress: int = 5
    output: Path | None = None
    error: str | None = None
    created_at: float = 0.0
    completed_at: float | None = None
    canceled: bool = False
    task: asyncio.Task[None] | None = None

    def duration_s(self) -> float:
        return int(self.draft.get("d") or 0) / 1000

    def data(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "progress": self.progress,
            "outputUrl": self.output_url(base_url),
            "error": self.error,
            "createdAt": iso(self.created_at),
            "completedAt": iso(self.completed_at) if self.completed_at else None,
        }

    def output_url(self, base_url: str) -> str | None:
        if self.status != "completed":
            return None
        return f"{base_url}/api/render/proxy/{self.id}/download"

    def vendor_shape(self, base_url: str) -> dict[str, Any]:
        output = None
        if self.status == "completed" and self.output is not None:
            size = self.output.stat().st_size if self.output.exists() else 0
            output = {"url": self.output_url(base_url), "duration": self.duration_s(), "size": size}
        return {
            "taskId": self.id,
            "status": self.status,
            "progress": self.progress,
            "output": output,
            "error": self.error,
        }


class RenderManager:
    def __init__(
        self, config: EmulatorConfig, faults: FaultInjector, stats: Stats, renderer: Renderer
    ) -> None:
        self.config = config
        self.faults = faults
        self.stats = stats
        self.renderer = renderer
        self.jobs: dict[str, RenderJob] = {}
        self.used_ids: set[str] = set()

    def reset(self) -> None:
        for job in self.jobs.values():
            if job.task is not None:
                job.task.cancel()
        self.jobs.clear()
        self.used_ids.clear()

    def is_used(self, render_id: str) -> bool:
        return render_id in self.used_ids

    def post(self, render_id: str, session_id: str, draft: dict[str, Any]) -> RenderJob:
        profile = self.faults.profile
        key = session_id or "-"
        delay = self.faults.uniform("render_delay", profile.render_delay_s, key)
        job = RenderJob(
            id=render_id,
            session_id=session_id,
            draft=draft,
            draft_hash=draft_hash(draft),
            delay_s=self.config.scaled(delay),
            will_fail=self.faults.chance("render_failure", profile.render_failure_rate, key),
            created_at=time.time(),
        )
        self.used_ids.add(render_id)
        self.jobs[render_id] = job
        self.stats.render_posted(session_id, job.draft_hash)
        job.task = asyncio.create_task(self._run(job))
        return job

    def cancel(self, job: RenderJob) -> None:
        if job.status in ("completed", "failed"):
            return
        job.canceled = True
        if job.task is not None:
            job.task.cancel()
        self._finish(job, "failed", "canceled by the user")
        self.stats.renders["canceled"] += 1

    def _finish(self, job: RenderJob, status: str, error: str | None = None) -> None:
        job.status = status
        job.error = error
        job.completed_at = time.time()
        if status == "completed":
            job.progress = 100

    async def _run(self, job: RenderJob) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(job.delay_s * PENDING_SHARE)
        job.status = "processing"
        job.progress = 10
        if job.will_fail:
            await asyncio.sleep(job.delay_s * 0.4)
            self._finish(job, "failed", "Render failed: the render worker timed out (emulated)")
            self.stats.renders["failed"] += 1
            return
        rendered = {"share": 0.0}

        def on_progress(share: float) -> None:
            rendered["share"] = share

        render = asyncio.ensure_future(self.renderer.render(job.draft, on_progress))
        try:
            while True:
                done, _ = await asyncio.wait({render}, timeout=TICK_S)
                elapsed = loop.time() - started
                timed = min(1.0, elapsed / job.delay_s) if job.delay_s > 0 else 1.0
                share = min(timed, 1.0 if done else rendered["share"])
                job.progress = max(job.progress, 10 + int(85 * share))
                if done and timed >= 1.0:
                    break
            job.output = render.result()
        except asyncio.CancelledError:
            render.cancel()
            if not job.canceled:
                self._finish(job, "failed", "Render interrupted")
                self.stats.renders["failed"] += 1
            raise
        except Exception as exc:
            self._finish(job, "failed", f"Render failed: {exc}")
            self.stats.renders["failed"] += 1
            return
        self._finish(job, "completed")
        self.stats.renders["completed"] += 1
        self.stats.completed_by_draft[job.draft_hash] += 1
