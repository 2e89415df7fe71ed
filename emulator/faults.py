"""Deterministic fault decisions: each one draws from its own RNG seeded by (seed, kind, key, n).

A decision depends only on the seed, its kind, its key (a session, a token, an endpoint) and how
many decisions of that kind and key came before it, so concurrent callers disturb each other as
little as possible and a replayed call sequence meets the same faults.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter

from emulator.config import FaultProfile


class FaultInjector:
    """Draws fault decisions and counts the faults injected, by kind."""

    def __init__(self, seed: int, profile: FaultProfile) -> None:
        self.seed = seed
        self.profile = profile
        self._draws: Counter[tuple[str, str]] = Counter()
        self.injected: Counter[str] = Counter()

    def reset(self) -> None:
        self._draws.clear()
        self.injected.clear()

    def rng(self, kind: str, key: str = "") -> random.Random:
        """A fresh RNG for the next decision of this kind and key."""
        n = self._draws[(kind, key)]
        self._draws[(kind, key)] = n + 1
        digest = hashlib.sha256(f"{self.seed}|{kind}|{key}|{n}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def chance(self, kind: str, rate: float, key: str = "") -> bool:
        """True (and counted as injected) with probability `rate`."""
        if rate <= 0.0:
            return False
        hit = self.rng(kind, key).random() < rate
        if hit:
            self.injected[kind] += 1
        return hit

    def uniform(self, kind: str, bounds: tuple[float, float], key: str = "") -> float:
        low, high = bounds
        if high <= low:
            return low
        return self.rng(kind, key).uniform(low, high)

    def record(self, kind: str) -> None:
        self.injected[kind] += 1
