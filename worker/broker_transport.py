"""kombu's Redis transport with one client per channel instead of one per command.

kombu builds a new `redis.Redis` for every publish, ack and delivery bookkeeping (its
`conn_or_acquire`); with redis-py 8 each one copies its table of response callbacks, about a
tenth of a millisecond: 6% of the prefork worker's CPU in bench figure 1 (bench/RESULTS.md). A
`redis.Redis` is only a handle on the channel's connection pool, safe to share: commands still
take a connection from the pool, so reconnects and everything else are kombu's as before.
"""

from typing import Any

from kombu.transport import redis as kombu_redis

SCHEMES = frozenset({"redis", "rediss"})
"""Broker URLs this transport serves (sentinel and others keep kombu's own)."""


class Channel(kombu_redis.Channel):
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
