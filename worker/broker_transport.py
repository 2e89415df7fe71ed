"""kombu's Redis transport with one client per channel, and ack bookkeeping without MULTI.

kombu builds a new `redis.Redis` for every publish, ack and delivery bookkeeping (its
`conn_or_acquire`); with redis-py 8 each one copies its table of response callbacks, about a
tenth of a millisecond: 6% of the prefork worker's CPU in bench figure 1 (bench/RESULTS.md). A
`redis.Redis` is only a handle on the channel's connection pool, safe to share: commands still
take a connection from the pool, so reconnects and everything else are kombu's as before.

Ack emulation (the visibility timeout) writes two keys when a message is delivered and removes
them when it is acknowledged, each pair in a MULTI/EXEC transaction: four replies to parse
instead of two, twice per task. The pairs need no transaction: one write sends both commands,
and a restore (kombu's `restore_by_tag`, still transactional) skips an index entry whose
message is gone, so a pair half written changes nothing.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis

SCHEMES = frozenset({"redis", "rediss"})
"""Broker URLs this transport serves (sentinel and others keep kombu's own)."""


class QoS(kombu_redis.QoS):
    @contextmanager
    def pipe_or_acquire(self, pipe: Any = None, client: Any = None) -> Iterator[Any]:
        if pipe is not None:
            yield pipe
            return
        channel: Any = self.channel  # kombu's stubs do not show the Redis channel's methods
        with channel.conn_or_acquire(client) as redis_client:
            yield redis_client.pipeline(transaction=False)


class Channel(kombu_redis.Channel):
    QoS = QoS
    _shared: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        kombus: Any = super()  # kombu's stubs do not show its private methods
        if asynchronous:
            return kombus._create_client(asynchronous=True)
        shared = self._shared
        if shared is None or shared.connection_pool is not self.pool:
            shared = self._shared = kombus._create_client()
        return shared


class Transport(kombu_redis.Transport):
    Channel = Channel


def transport_for(broker_url: str) -> str | None:
    """The `broker_transport` setting for a broker URL: this module's, or None (kombu's)."""
    scheme = broker_url.split("://", 1)[0].lower()
    return f"{__name__}:Transport" if scheme in SCHEMES else None
