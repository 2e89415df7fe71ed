"""Render jobs: pending -> processing (progress) -> completed | failed, in the background."""

from __future__ import annotations

import asyncio
import json
import shutil
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
    client_id: str | None = None
    """The id the client posted under, when the backend assigned its own (`id`)."""
    expired_first: bool | None = None
    """expired_urls variant: whether the first URL handed out has already expired."""
    stale_served: bool = False

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
        self.aliases: dict[str, str] = {}
        """Client render id -> the backend's own id (status_words variant)."""

    def reset(self) -> None:
        for job in self.jobs.values():
            if job.task is not None:
                job.task.cancel()
        self.jobs.clear()
        self.used_ids.clear()
        self.aliases.clear()
        shutil.rmtree(self.renderer.out_dir / "finished", ignore_errors=True)

    def is_used(self, render_id: str) -> bool:
        return render_id in self.used_ids or self._record(render_id).exists()

    def find(self, render_id: str) -> RenderJob | None:
        """A render of this process (by its id or the id the client posted it under), or a
        completed one recorded on disk by an earlier run (a backend restart loses renders in
        flight, not finished ones)."""
        job = self.jobs.get(render_id) or self.jobs.get(self.aliases.get(render_id, ""))
        if job is not None or "/" in render_id or render_id.startswith("."):
            return job
        record = self._record(render_id)
        if not record.is_file():
            return None
        data = json.loads(record.read_text())
        job = RenderJob(
            id=render_id,
            session_id=data["session_id"],
            draft={"d": data["d"]},
            draft_hash=data["draft_hash"],
            delay_s=0.0,
            will_fail=False,
            status="completed",
            progress=100,
            output=Path(data["output"]),
            created_at=data["created_at"],
            completed_at=data["completed_at"],
        )
        self.jobs[render_id] = job
        return job

    def _record(self, render_id: str) -> Path:
        return self.renderer.out_dir / "finished" / f"{render_id}.json"

    def _keep(self, job: RenderJob) -> None:
        record = self._record(job.id)
        record.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "session_id": job.session_id,
            "d": job.draft.get("d") or 0,
            "draft_hash": job.draft_hash,
            "output": str(job.output),
            "created_at": job.created_at,
            "completed_at": job.completed_at,
        }
        record.write_text(json.dumps(data))

    def post(
        self, render_id: str, session_id: str, draft: dict[str, Any], own_id: str | None = None
    ) -> RenderJob:
        """Start a render; under `own_id` (the backend's own id) when given."""
        profile = self.faults.profile
        key = session_id or "-"
        delay = self.faults.uniform("render_delay", profile.render_delay_s, key)
        job = RenderJob(
            id=own_id or render_id,
            session_id=session_id,
            draft=draft,
            draft_hash=draft_hash(draft),
            delay_s=self.config.scaled(delay),
            will_fail=self.faults.chance("render_failure", profile.render_failure_rate, key),
            created_at=time.time(),
            client_id=render_id if own_id else None,
        )
        self.used_ids.add(render_id)
        self.jobs[job.id] = job
        if own_id:
            self.aliases[render_id] = own_id
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
                if done:  # rendered (or cached) early: wait out the emulated time, do not spin
                    await asyncio.sleep(min(TICK_S, job.delay_s - elapsed))
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
        self._keep(job)
        self.stats.renders["completed"] += 1
        self.stats.completed_by_draft[job.draft_hash] += 1
