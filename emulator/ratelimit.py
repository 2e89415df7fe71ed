"""A token-bucket rate limit per caller (its token, else its address)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """`rps` requests a second on average, bursts of `burst`; rps <= 0 turns it off."""

    def __init__(self, rps: float, burst: int) -> None:
        self.rps = rps
        self.burst = max(1, burst)
        self._buckets: dict[str, _Bucket] = {}

    def configure(self, rps: float, burst: int) -> None:
        self.rps = rps
        self.burst = max(1, burst)

    def reset(self) -> None:
        self._buckets.clear()

    def acquire(self, key: str, now: float | None = None) -> float:
        """0.0 when the request may pass, else the seconds to wait before retrying."""
        if self.rps <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rps)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rps


def retry_after_header(wait_s: float) -> str:
    """Retry-After in whole seconds, never below 1."""
    return str(max(1, math.ceil(wait_s)))
