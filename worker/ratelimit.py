"""A token bucket in Redis that paces every process's outbound requests to one shared rate.

One Lua script does the arithmetic on the server with Redis `TIME`, so all processes share one
clock and one bucket whatever their own clocks say. The bucket is a hash at `key`:

    tokens   tokens left (float, at most `burst`)
    ts       when `tokens` was last refilled; in the future while pushed back after a 429

`push_back(s)` moves `ts` forward: until then nobody gets a token, and afterwards pacing
restarts from (at most) one token rather than a full burst.
"""

from __future__ import annotations

import math
import random
import time

import redis

__all__ = ["RateLimitTimeout", "RateLimiter"]

_SCRIPT = """
local key = KEYS[1]
local op = ARGV[1]
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local arg = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000

local tokens = tonumber(redis.call('HGET', key, 'tokens'))
local ts = tonumber(redis.call('HGET', key, 'ts'))
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate)
  ts = now
end

local wait = 0
if op == 'push_back' then
  ts = math.max(ts, now + arg)
  tokens = math.min(tokens, 1)
elseif now < ts then
  wait = (ts - now) + math.max(0, 1 - tokens) / rate
elseif tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end

redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(ts))
local full_in = (ts - now) + (burst - tokens) / rate
redis.call('PEXPIRE', key, math.ceil((full_in + 60) * 1000))
return tostring(wait)
"""


class RateLimitTimeout(TimeoutError):
    """No token within the caller's timeout; `retry_after` is when to come back (seconds).

    A `TimeoutError`, so `NemoClient` reports it from its `before_request` hook as
    `RateLimited` and callers handle local and remote pacing in one branch.
    """

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"the shared rate limiter asks to wait {retry_after:.2f} s")


class RateLimiter:
    """Paces callers across processes to `rate_per_s`, allowing bursts of `burst`."""

    def __init__(self, redis: redis.Redis, key: str, rate_per_s: float, burst: int) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be positive and burst at least 1")
        self.key = key
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._script = redis.register_script(_SCRIPT)

    def try_acquire(self) -> float:
        """Take a token: 0.0 if granted, else the seconds to wait before asking again."""
        return self._run("acquire", 0.0)

    def acquire(self, timeout_s: float | None = 5.0) -> None:
        """Block in short sleeps until a token is granted (sub-second pacing).

        Raises `RateLimitTimeout` as soon as the wait would outlast `timeout_s` (say, after a
        `push_back`), so a worker reschedules instead of sleeping; None waits as long as needed.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            wait = self.try_acquire()
            if wait <= 0:
                return
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if wait > remaining:
                    raise RateLimitTimeout(max(wait, timeout_s or 0.0))
            time.sleep(min(wait, 1.0) + random.uniform(0, 0.005))

    def push_back(self, seconds: float) -> None:
        """Nobody gets a token for `seconds` from now (never shortens an earlier push)."""
        if seconds > 0 and math.isfinite(seconds):
            self._run("push_back", seconds)

    def _run(self, op: str, arg: float) -> float:
        answer = self._script(keys=[self.key], args=[op, self.rate_per_s, self.burst, arg])
        return max(0.0, float(answer))
