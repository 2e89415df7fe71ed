"""A turn waits through silences longer than the per-request timeout, up to its own ceiling,
over a real socket (httpx's read timeout only applies on a real connection)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from worker.nemo import NemoClient

SILENCE_S = 1.5


class _SilentAgent(BaseHTTPRequestHandler):
    """Sends a tool call, stays silent for SILENCE_S (no heartbeat), then the reply."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(b'data: {"type": "tool_call", "name": "generate_video_with_seedance"}\n\n')
        self.wfile.flush()
        time.sleep(SILENCE_S)
        self.wfile.write(b'data: {"type": "text", "content": "Here is your video."}\n\n')
        self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def silent_backend() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SilentAgent)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_silence_longer_than_the_request_timeout_does_not_end_the_turn(
    silent_backend: str,
) -> None:
    client = NemoClient(silent_backend, token="nmv_usr_t", timeout=httpx.Timeout(0.5))
    turn = client.send_message("5", "make a video", deadline_s=30)
    assert turn.text == "Here is your video."
    assert not turn.cut and not turn.deadline_hit
    assert turn.elapsed_s >= SILENCE_S


def test_a_silence_past_the_turns_ceiling_ends_it_as_deadline_not_as_cut(
    silent_backend: str,
) -> None:
    client = NemoClient(silent_backend, token="nmv_usr_t", timeout=httpx.Timeout(30.0))
    turn = client.send_message("5", "make a video", deadline_s=0.5)
    assert turn.deadline_hit and not turn.cut
    assert turn.elapsed_s < SILENCE_S
