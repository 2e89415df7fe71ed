"""Per-process access to the backend: one HTTP pool, one rate limiter, a client per token.

Clients are made lazily after the fork (RELIABILITY.md: one httpx client per process).
"""

import threading
from functools import lru_cache

import httpx
import redis

from core.settings import get_settings
from worker.nemo import NemoClient
from worker.ratelimit import RateLimiter

_lock = threading.Lock()
_clients: dict[str | None, NemoClient] = {}


@lru_cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, socket_timeout=10)


@lru_cache
def rate_limiter() -> RateLimiter:
    settings = get_settings()
    return RateLimiter(
        redis_client(),
        key="nemo:ratelimit",
        rate_per_s=settings.nemo_rate_limit_rps,
        burst=settings.nemo_rate_limit_burst,
    )


def _pace() -> None:
    rate_limiter().acquire()


def client_for(token: str | None) -> NemoClient:
    """The process's client for a token (None: no token yet, for the anonymous-token call)."""
    with _lock:
        client = _clients.get(token)
        if client is None:
            settings = get_settings()
            client = NemoClient(
                settings.nemo_api_base,
                token=token,
                skill_source=settings.nemo_skill_source,
                skill_version=settings.nemo_skill_version,
                skill_platform=settings.nemo_skill_platform,
                timeout=httpx.Timeout(settings.nemo_request_timeout_s, connect=10.0),
                before_request=_pace,
            )
            _clients[token] = client
        return client


def reset_clients() -> None:
    """Forget clients inherited across a fork and the cached Redis connections."""
    with _lock:
        _clients.clear()
    redis_client.cache_clear()
    rate_limiter.cache_clear()
