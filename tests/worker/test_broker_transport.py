"""The workers' broker transport shares one Redis client per channel (kombu made one per
command: 6% of the prefork worker's CPU), keeps ack emulation's bookkeeping without MULTI, and
serves only plain Redis URLs."""

import uuid
from typing import Any

import redis
from kombu import Connection

from tests.conftest import TEST_REDIS_URL
from worker.broker_transport import Channel, transport_for

OURS = transport_for(TEST_REDIS_URL)


def test_a_channel_hands_out_one_client_for_every_command() -> None:
    with Connection(TEST_REDIS_URL, transport=OURS) as connection:
        channel = connection.default_channel
        assert isinstance(channel, Channel)
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
            assert first.connection_pool is channel.pool


def test_a_new_pool_gets_a_new_client() -> None:
    with Connection(TEST_REDIS_URL, transport=OURS) as connection:
        channel = connection.default_channel
        assert isinstance(channel, Channel)
        with channel.conn_or_acquire() as before:
            pass
        # What kombu does when it closes the connection (a private method its stubs omit).
        channel._disconnect_pools()  # type: ignore[attr-defined]
        with channel.conn_or_acquire() as after:
            assert after is not before
            assert after.connection_pool is channel.pool


def test_only_redis_urls_use_it() -> None:
    assert transport_for("redis://127.0.0.1:6379/0") == "worker.broker_transport:Transport"
    assert transport_for("rediss://cache.example:6380/0") == "worker.broker_transport:Transport"
    assert transport_for("sentinel://127.0.0.1:26379") is None


def _options(tag: str) -> dict[str, Any]:
    """Bookkeeping keys of this test's own: other tests' workers share the Redis database."""
    return {"unacked_key": f"unacked-{tag}", "unacked_index_key": f"unacked-index-{tag}"}


def test_a_delivered_message_is_kept_until_acked_and_one_never_acked_comes_back() -> None:
    tag = uuid.uuid4().hex[:8]
    options, keys = _options(tag), redis.Redis.from_url(TEST_REDIS_URL)
    with Connection(TEST_REDIS_URL, transport=OURS, transport_options=options) as connection:
        queue = connection.SimpleQueue(f"transport-{tag}")
        queue.put({"n": 1})
        queue.put({"n": 2})
        first = queue.get(timeout=5)
        assert keys.hlen(options["unacked_key"]) == 1
        assert keys.zcard(options["unacked_index_key"]) == 1
        first.ack()
        assert keys.hlen(options["unacked_key"]) == 0
        assert keys.zcard(options["unacked_index_key"]) == 0
        unacked = queue.get(timeout=5)
        assert unacked.payload == {"n": 2}
        queue.close()  # the worker goes away without acknowledging it
    with Connection(TEST_REDIS_URL, transport=OURS, transport_options=options) as connection:
        queue = connection.SimpleQueue(f"transport-{tag}")
        again = queue.get(timeout=5)
        assert again.payload == {"n": 2}
        again.ack()
        queue.close()
    assert keys.hlen(options["unacked_key"]) == 0
