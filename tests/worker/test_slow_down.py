"""A backend 429 slows every worker briefly; it never stalls them for the whole Retry-After."""

import pytest

from worker.nemo import RateLimited


def test_a_429_with_a_long_retry_after_pauses_the_shared_limiter_only_briefly(
    settings: object, redis_client: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.settings import get_settings
    from worker.backend import rate_limiter, reset_clients
    from worker.runner import slow_down_after_429

    monkeypatch.setenv("NEMO_RATE_LIMIT_RPS", "10")
    get_settings.cache_clear()
    reset_clients()
    limiter = rate_limiter()

    slow_down_after_429(RateLimited("slow down", retry_after=30.0, http_status=429))

    wait = limiter.try_acquire()
    assert 0 < wait <= 2 / 10 + 0.05, wait
    get_settings.cache_clear()
    reset_clients()


def test_our_own_pacing_does_not_push_the_limiter_back(
    settings: object, redis_client: object
) -> None:
    from worker.backend import rate_limiter, reset_clients
    from worker.runner import slow_down_after_429

    reset_clients()
    slow_down_after_429(RateLimited("no slot", retry_after=3.0, http_status=None))
    assert rate_limiter().try_acquire() == 0
