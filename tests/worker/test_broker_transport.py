"""The workers' broker transport shares one Redis client per channel (kombu made one per
command: 6% of the prefork worker's CPU) and serves only plain Redis URLs."""

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
