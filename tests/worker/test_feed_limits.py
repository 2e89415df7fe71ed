"""A schedule's fetches are bounded: a media file whose server says what identifies it (ETag,
Last-Modified and size) is not downloaded to fingerprint it, and a feed that trickles stops at
the overall deadline."""

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

Handler = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture()
def serve() -> Iterator[Callable[[Handler], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Handler) -> str:
        class Handle(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with contextlib.suppress(OSError):  # the client left, as it should
                    answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        server.daemon_threads = True
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}/file"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def slow_body(handler: BaseHTTPRequestHandler, headers: dict[str, str]) -> None:
    """Headers at once, then a body of 10 MB at one byte every 0.2 s (it would take weeks)."""
    handler.send_response(200)
    for name, value in {"Content-Length": str(10_000_000), **headers}.items():
        handler.send_header(name, value)
    handler.end_headers()
    for _ in range(10_000_000):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"ETag": '"v7"'}, 'etag "v7" size 10000000'),
        (
            {"Last-Modified": "Mon, 30 Nov 2026 10:00:00 GMT"},
            "modified Mon, 30 Nov 2026 10:00:00 GMT size 10000000",
        ),
    ],
)
def test_media_the_server_identifies_is_fingerprinted_without_downloading_it(
    settings: Any, serve: Any, headers: dict[str, str], expected: str
) -> None:
    from worker.feeds import hash_urls

    url = serve(lambda handler: slow_body(handler, headers))
    fetching = settings.model_copy(update={"allow_private_urls": True, "feed_timeout_s": 30.0})
    started = time.monotonic()
    assert hash_urls([url], fetching) == {url: expected}
    assert time.monotonic() - started < 3.0


def test_a_trickling_download_stops_at_the_deadline(settings: Any, serve: Any) -> None:
    from worker.feeds import FetchError, hash_urls

    url = serve(lambda handler: slow_body(handler, {}))
    fetching = settings.model_copy(update={"allow_private_urls": True, "feed_timeout_s": 1.5})
    started = time.monotonic()
    (result,) = hash_urls([url], fetching).values()
    took = time.monotonic() - started
    assert isinstance(result, FetchError)
    assert "took longer than 1.5 s" in str(result)
    assert took < 3.0, took
