"""The Redis token bucket paces every process to one rate; a push-back stops them all.

Against real Redis: each test uses its own key and deletes it. Timing bounds are loose on the
slow side (a loaded 2-core machine) and strict on the fast side, where a token bucket is exact.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.conftest import TEST_REDIS_URL as REDIS_URL
from worker.nemo import NemoClient, RateLimited
from worker.ratelimit import RateLimiter, RateLimitTimeout


@pytest.fixture()
def key() -> Iterator[str]:
    name = f"test:ratelimit:{uuid.uuid4().hex}"
    yield name
    connection = redis.Redis.from_url(REDIS_URL)
    connection.delete(name)
    connection.close()


def _limiter(key: str, rate_per_s: float, burst: int) -> RateLimiter:
    """A limiter on its own connection, as another process would have."""
    return RateLimiter(redis.Redis.from_url(REDIS_URL), key, rate_per_s=rate_per_s, burst=burst)


def test_a_full_bucket_grants_its_burst_at_once_then_asks_to_wait_one_interval(key: str) -> None:
    limiter = _limiter(key, rate_per_s=2, burst=5)
    assert [limiter.try_acquire() for _ in range(5)] == [0.0] * 5
    wait = limiter.try_acquire()
    assert 0.3 < wait <= 0.5


def test_two_processes_share_one_bucket_and_are_paced_at_the_configured_rate(key: str) -> None:
    rate, burst, per_process = 10.0, 5, 10
    limiters = [_limiter(key, rate, burst), _limiter(key, rate, burst)]
    grants: list[tuple[float, int]] = []
    lock = threading.Lock()
    started = time.monotonic()

    def work(index: int) -> None:
        for _ in range(per_process):
            limiters[index].acquire(timeout_s=30)
            with lock:
                grants.append((time.monotonic() - started, index))

    threads = [threading.Thread(target=work, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.monotonic() - started

    total = 2 * per_process
    assert len(grants) == total
    assert {index for _, index in grants} == {0, 1}
    # Never faster than the bucket allows: burst plus the rate times the time so far.
    minimum = (total - burst) / rate
    assert elapsed >= minimum - 0.1
    for count, (at, _) in enumerate(sorted(grants), start=1):
        assert count <= burst + rate * at + 1
    # The burst went out at once, and the rest did not crawl.
    assert sorted(grants)[burst - 1][0] < 1.0
    assert elapsed < minimum + 4.0


def test_push_back_from_one_process_delays_every_process(key: str) -> None:
    first, second = _limiter(key, 20, 5), _limiter(key, 20, 5)
    first.push_back(1.0)
    assert 0.8 <= second.try_acquire() <= 1.1
    started = time.monotonic()
    second.acquire(timeout_s=10)
    waited = time.monotonic() - started
    assert 0.8 <= waited < 3.0


def test_after_a_push_back_pacing_restarts_without_a_burst(key: str) -> None:
    limiter = _limiter(key, rate_per_s=5, burst=10)
    limiter.push_back(0.3)
    limiter.acquire(timeout_s=5)
    assert limiter.try_acquire() > 0.05


def test_a_shorter_push_back_never_shortens_a_longer_one(key: str) -> None:
    limiter = _limiter(key, 10, 5)
    limiter.push_back(3.0)
    limiter.push_back(0.5)
    assert limiter.try_acquire() >= 2.5


def test_acquire_gives_up_at_once_when_the_wait_outlasts_its_timeout(key: str) -> None:
    limiter = _limiter(key, 10, 5)
    limiter.push_back(20.0)
    started = time.monotonic()
    with pytest.raises(RateLimitTimeout) as raised:
        limiter.acquire(timeout_s=1.0)
    assert time.monotonic() - started < 0.5
    assert 18.0 <= raised.value.retry_after <= 20.5


def test_the_bucket_key_expires_once_it_would_be_full_again(key: str) -> None:
    limiter = _limiter(key, rate_per_s=10, burst=5)
    limiter.try_acquire()
    ttl = redis.Redis.from_url(REDIS_URL).pttl(key)
    assert 60_000 <= ttl <= 61_000


def test_a_pushed_back_limiter_makes_the_client_raise_rate_limited_without_calling(
    key: str,
) -> None:
    limiter = _limiter(key, 10, 5)
    limiter.push_back(30.0)
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    transport = httpx.MockTransport(record)
    client = NemoClient("https://nemo.test", transport=transport, before_request=limiter.acquire)
    with pytest.raises(RateLimited) as raised:
        client.credits()
    assert raised.value.retry_after is not None and raised.value.retry_after >= 25
    assert sent == []


def test_invalid_settings_are_refused() -> None:
    connection = redis.Redis.from_url(REDIS_URL)
    with pytest.raises(ValueError):
        RateLimiter(connection, "k", rate_per_s=0, burst=1)
    with pytest.raises(ValueError):
        RateLimiter(connection, "k", rate_per_s=1, burst=0)
