"""A webhook try has one deadline for the whole exchange and reads a few KiB of the answer at
most: a receiver that trickles or floods cannot hold a worker."""

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture()
def receiver() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    """A loopback server answering each connection with `behave(connection)`."""
    servers: list[socket.socket] = []

    def start(behave: Callable[[socket.socket], None]) -> str:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def serve() -> None:
            while True:
                try:
                    connection, _ = server.accept()
                except OSError:
                    return
                with connection, contextlib.suppress(OSError):
                    connection.recv(65536)
                    behave(connection)

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{server.getsockname()[1]}/hook"

    yield start
    for server in servers:
        server.close()


def trickle(connection: socket.socket) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
        connection.sendall(bytes([byte]))
        time.sleep(0.2)


def flood(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 50000000\r\n\r\n")
    chunk = b"x" * 65536
    for _ in range(800):
        connection.sendall(chunk)


def test_a_trickling_receiver_is_cut_off_at_the_deadline(settings: Any, receiver: Any) -> None:
    from worker.webhooks import send

    url = receiver(trickle)
    quick = settings.model_copy(update={"webhook_timeout_s": 1.5, "allow_private_urls": True})
    started = time.monotonic()
    result = send(url, b"{}", {"Content-Type": "application/json"}, quick)
    took = time.monotonic() - started
    assert result.error == "no answer within 1.5 s"
    assert result.status_code is None and not result.ok
    assert 1.4 <= took < 2.5, took


def test_only_the_start_of_a_huge_answer_is_read(settings: Any, receiver: Any) -> None:
    from worker.webhooks import send

    url = receiver(flood)
    quick = settings.model_copy(update={"webhook_timeout_s": 5.0, "allow_private_urls": True})
    started = time.monotonic()
    result = send(url, b"{}", {"Content-Type": "application/json"}, quick)
    assert time.monotonic() - started < 2.0
    assert result.status_code == 500
    assert result.error is not None
    assert result.error.startswith("the receiver answered HTTP 500: xxx")
    assert len(result.error) < 300


def test_a_prompt_receiver_is_delivered(settings: Any, receiver: Any) -> None:
    from worker.webhooks import send

    url = receiver(lambda c: c.sendall(b"HTTP/1.1 204 No Content\r\n\r\n"))
    quick = settings.model_copy(update={"webhook_timeout_s": 5.0, "allow_private_urls": True})
    result = send(url, b"{}", {"Content-Type": "application/json"}, quick)
    assert (result.status_code, result.error) == (204, None)


def test_every_task_has_soft_and_hard_time_limits(settings: Any) -> None:
    from worker.celery_app import app

    assert app.conf.task_soft_time_limit < app.conf.task_time_limit
    deliver = app.conf.task_annotations["worker.deliver_webhook"]
    assert deliver["soft_time_limit"] < deliver["time_limit"]
    assert deliver["time_limit"] <= settings.webhook_timeout_s + 30
    assert app.conf.visibility_timeout > app.conf.task_time_limit
