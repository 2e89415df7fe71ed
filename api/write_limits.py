"""Per-tenant limits on writes: a rate (a token bucket) and a number running at once.

One tenant's loop of uploads or batch posts must not take the API from the others: a write
(any method but GET, HEAD and OPTIONS) over either limit is answered 429 with `Retry-After`
and the IETF draft's `RateLimit` / `RateLimit-Policy` fields before its body is read. Both
counts live in Redis (one Lua script, Redis `TIME`), so every API process shares them; a slot
taken by a process that died frees itself after `SLOT_TTL_S`. If Redis does not answer, the
write goes through: the limit protects the service, it must not stop it.
"""

import logging
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import redis
from fastapi import Depends, Request, Response

from api.deps import SettingsDep, TenantDep
from api.errors import ApiError

log = logging.getLogger(__name__)

READS = frozenset({"GET", "HEAD", "OPTIONS"})
SLOT_TTL_S = 600
POLICY = "writes"

_SCRIPT = """
local bucket, running = KEYS[1], KEYS[2]
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local concurrency, slot, ttl = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000

redis.call('ZREMRANGEBYSCORE', running, '-inf', now)
local tokens = tonumber(redis.call('HGET', bucket, 'tokens')) or burst
local ts = tonumber(redis.call('HGET', bucket, 'ts')) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)

if redis.call('ZCARD', running) >= concurrency then
  return {0, 'concurrency', '1', tostring(tokens)}
end
if tokens < 1 then
  return {0, 'rate', tostring((1 - tokens) / rate), tostring(tokens)}
end
tokens = tokens - 1
redis.call('HSET', bucket, 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', bucket, math.ceil((burst - tokens) / rate) + 60)
redis.call('ZADD', running, now + ttl, slot)
redis.call('EXPIRE', running, ttl)
return {1, '', '0', tostring(tokens)}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    """`rate` or `concurrency` when refused."""
    retry_after_s: float
    remaining: int


@lru_cache(maxsize=8)
def _redis(url: str) -> "redis.Redis[bytes]":
    return redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)


def _keys(tenant_id: uuid.UUID) -> list[str]:
    return [f"nemo:writes:{tenant_id}:bucket", f"nemo:writes:{tenant_id}:running"]


def acquire(
    url: str, tenant_id: uuid.UUID, slot: str, per_minute: int, burst: int, concurrency: int
) -> Decision | None:
    """A write slot for the tenant, or why not; None when Redis does not answer."""
    try:
        allowed, reason, wait, tokens = _redis(url).eval(
            _SCRIPT,
            2,
            *_keys(tenant_id),
            per_minute / 60.0,
            burst,
            concurrency,
            slot,
            SLOT_TTL_S,
        )
    except redis.RedisError as error:
        log.warning("write limits not applied, Redis does not answer: %s", error)
        return None
    return Decision(
        allowed=bool(allowed),
        reason=reason.decode() if isinstance(reason, bytes) else str(reason),
        retry_after_s=float(wait),
        remaining=max(0, math.floor(float(tokens))),
    )


def release(url: str, tenant_id: uuid.UUID, slot: str) -> None:
    try:
        _redis(url).zrem(_keys(tenant_id)[1], slot)
    except redis.RedisError as error:
        log.warning("write slot not released (it expires by itself): %s", error)


def rate_headers(decision: Decision, per_minute: int) -> dict[str, str]:
    """`RateLimit-Policy` and `RateLimit` as draft-ietf-httpapi-ratelimit-headers writes them."""
    reset = math.ceil(decision.retry_after_s) if not decision.allowed else 0
    return {
        "RateLimit-Policy": f'"{POLICY}";q={per_minute};w=60',
        "RateLimit": f'"{POLICY}";r={decision.remaining};t={reset}',
    }


def write_limit(
    request: Request, response: Response, tenant: TenantDep, settings: SettingsDep
) -> Iterator[None]:
    """Holds a write slot of the tenant for the request; 429 when none is free."""
    if request.method in READS:
        yield
        return
    per_minute = settings.write_rate_per_minute
    slot = uuid.uuid4().hex
    decision = acquire(
        settings.redis_url,
        tenant.id,
        slot,
        per_minute,
        settings.write_burst,
        settings.write_concurrency,
    )
    if decision is None:
        yield
        return
    headers = rate_headers(decision, per_minute)
    if not decision.allowed:
        wait = max(1, math.ceil(decision.retry_after_s))
        if decision.reason == "concurrency":
            message = (
                f"this API key's tenant already has {settings.write_concurrency} writes running; "
                f"wait for one to finish and try again in {wait} s"
            )
        else:
            message = (
                f"this API key's tenant sent more than {per_minute} writes a minute; "
                f"try again in {wait} s"
            )
        raise ApiError(429, "rate_limited", message, headers={**headers, "Retry-After": str(wait)})
    response.headers.update(headers)
    try:
        yield
    finally:
        release(settings.redis_url, tenant.id, slot)


WriteLimit = Depends(write_limit)
