"""The emulator's live parts, shared by every route through `app.state.emulator`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from emulator.config import EmulatorConfig
from emulator.faults import FaultInjector
from emulator.ratelimit import TokenBucketLimiter
from emulator.render import Renderer
from emulator.renders import RenderManager
from emulator.state import MediaFile, Store
from emulator.stats import Stats


class Emulator:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.media_dir = config.data_dir / "media"
        self.tmp_dir = config.data_dir / "tmp"
        self.store = Store(config)
        self.stats = Stats()
        self.faults = FaultInjector(config.seed, config.profile)
        profile = config.profile
        self.limiter = TokenBucketLimiter(profile.rate_limit_rps, profile.rate_limit_burst)
        self.renderer = Renderer(
            config.data_dir / "renders",
            scale=config.render_scale,
            workers=config.render_workers,
            resolve=self.resolve_media,
        )
        self.renders = RenderManager(config, self.faults, self.stats, self.renderer)
        self.turn_tasks: set[asyncio.Task[None]] = set()

    def keep(self, task: asyncio.Task[None]) -> None:
        """Hold a background turn until it ends (the loop keeps only weak references)."""
        self.turn_tasks.add(task)
        task.add_done_callback(self.turn_tasks.discard)

    def resolve_media(self, meta: dict[str, Any]) -> Path | None:
        """The local file behind a segment's metadata (by media id, else by its URL's name)."""
        found: MediaFile | None = self.store.media.get(str(meta.get("media_id", "")))
        if found is not None and found.path.exists():
            return found.path
        src = str(meta.get("src") or "")
        if "/media/" in src:
            candidate = self.media_dir / src.rsplit("/media/", 1)[1]
            if candidate.is_file() and candidate.parent == self.media_dir:
                return candidate
        return None

    def set_profile_fields(self, changes: dict[str, Any]) -> None:
        profile = self.faults.profile.updated(changes)
        self.faults.profile = profile
        self.config.profile = profile
        self.limiter.configure(profile.rate_limit_rps, profile.rate_limit_burst)

    def credits(self) -> dict[str, Any]:
        return {
            a.user_id: {
                "kind": a.kind,
                "available": a.available,
                "frozen": a.frozen,
                "spent": a.spent,
            }
            for a in self.store.accounts.values()
        }

    def snapshot(self) -> dict[str, Any]:
        data = self.stats.snapshot(self.faults.injected, self.credits())
        data["renders"]["cache_hits"] = self.renderer.cache_hits
        data["profile"] = self.faults.profile.to_dict()
        data["sessions"] = len(self.store.sessions)
        return data

    def reset(self) -> None:
        for task in list(self.turn_tasks):
            task.cancel()
        self.renders.reset()
        self.store.reset()
        self.stats.reset()
        self.faults.reset()
        self.limiter.reset()
        self.renderer.cache_hits = 0
