"""What the emulator saw: requests, missing headers, turns and renders (GET /_emulator/stats)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.missing_auth: Counter[str] = Counter()
        self.missing_attribution: Counter[str] = Counter()
        self.turns: Counter[str] = Counter()
        self.renders: Counter[str] = Counter()
        self.renders_by_session: Counter[str] = Counter()
        self.renders_by_draft: Counter[str] = Counter()
        self.completed_by_draft: Counter[str] = Counter()
        self.streams_open = 0
        self.streams_peak = 0

    def request(self, endpoint: str, status: int) -> None:
        self.requests[endpoint][str(status)] += 1

    def stream_opened(self) -> None:
        self.streams_open += 1
        self.streams_peak = max(self.streams_peak, self.streams_open)

    def stream_closed(self) -> None:
        self.streams_open -= 1

    def render_posted(self, session_id: str, draft_hash: str) -> None:
        self.renders["posted"] += 1
        self.renders_by_session[session_id] += 1
        self.renders_by_draft[draft_hash] += 1

    def snapshot(self, faults: Counter[str], credits: dict[str, Any]) -> dict[str, Any]:
        return {
            "requests": {endpoint: dict(codes) for endpoint, codes in self.requests.items()},
            "faults": dict(faults),
            "credits": credits,
            "turns": dict(self.turns),
            "renders": {
                "posted": self.renders["posted"],
                "completed": self.renders["completed"],
                "failed": self.renders["failed"],
                "canceled": self.renders["canceled"],
                "rejected_reused_id": self.renders["rejected_reused_id"],
                "cache_hits": self.renders["cache_hits"],
                "unedited_draft": self.renders["unedited_draft"],
                "unjudged_draft": self.renders["unjudged_draft"],
                "expired_url_refused": self.renders["expired_url_refused"],
                "by_session": dict(self.renders_by_session),
                "by_draft_hash": dict(self.renders_by_draft),
                "duplicate_drafts": sorted(h for h, n in self.renders_by_draft.items() if n > 1),
                "completed_by_draft_hash": dict(self.completed_by_draft),
            },
            "missing_headers": {
                "auth": {
                    "count": sum(self.missing_auth.values()),
                    "endpoints": sorted(self.missing_auth),
                },
                "attribution": {
                    "count": sum(self.missing_attribution.values()),
                    "endpoints": sorted(self.missing_attribution),
                },
            },
            "streams": {"open": self.streams_open, "peak": self.streams_peak},
        }
