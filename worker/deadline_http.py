"""One HTTP POST bounded as a whole: connect, send, headers and the answer's first bytes all
within one deadline, and at most `max_answer_bytes` of the answer read.

httpx's timeouts bound each read, so a receiver answering one byte every few seconds could hold
a worker forever. Here every socket operation gets what is left of the deadline as its timeout
(an httpcore network backend that shrinks them), so the exchange ends at the deadline however
the other side trickles.
"""

import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpcore


class DeadlinePassed(Exception):
    pass


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def _left(self, timeout: float | None) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the deadline passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._left(timeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: float) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("the deadline passed")
        timeout = left if timeout is None else min(timeout, left)
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise httpcore.UnsupportedProtocol("no unix sockets here")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class Answer:
    status: int
    head: bytes
    """The answer's first bytes, at most `max_answer_bytes`."""


def post_within(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    deadline_s: float,
    max_answer_bytes: int,
    sni_hostname: str | None = None,
) -> Answer:
    """POST and read the answer's start; `DeadlinePassed` once `deadline_s` is spent, any
    httpcore or OS error as it comes."""
    deadline = time.monotonic() + deadline_s
    fields = [(name.encode(), value.encode()) for name, value in headers.items()]
    fields.append((b"Content-Length", str(len(body)).encode()))
    extensions: dict[str, Any] = {
        "timeout": {"connect": deadline_s, "read": deadline_s, "write": deadline_s, "pool": 1.0}
    }
    if sni_hostname:
        extensions["sni_hostname"] = sni_hostname
    try:
        with (
            httpcore.ConnectionPool(network_backend=_DeadlineBackend(deadline)) as pool,
            pool.stream("POST", url, headers=fields, content=body, extensions=extensions) as answer,
        ):
            head = b""
            for chunk in answer.iter_stream():
                head += chunk
                if len(head) >= max_answer_bytes:
                    break
            return Answer(answer.status, head[:max_answer_bytes])
    except httpcore.TimeoutException:
        if time.monotonic() >= deadline - 0.05:
            raise DeadlinePassed(f"no answer within {deadline_s:g} s") from None
        raise
