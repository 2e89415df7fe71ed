"""Image URLs are kept in storage at intake: a batch whose image server stops answering right
after intake still renders every video, a product image shared by the batch is one object, and
a URL that cannot be fetched fails its job at once, saying why, before any backend session."""

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.api.conftest import png_bytes
from tests.support.waiting import wait_for
from tests.worker.helpers import all_final, api_user, batch_jobs, describe
from tests.worker.stack import running_stack

CREATE_SESSION = "POST /api/tasks/{user}/with-session/nemo_agent"


class ImageServer:
    """A shop's image host on loopback, counting the requests of each path."""

    def __init__(self, images: dict[str, bytes]) -> None:
        self.images = images
        self.requests: Counter[str] = Counter()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests[self.path] += 1
                body = owner.images.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def stop(self) -> None:
        """Stop answering: connections are refused from now on."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@contextmanager
def image_server(images: dict[str, bytes]) -> Iterator[ImageServer]:
    server = ImageServer(images)
    server.thread.start()
    try:
        yield server
    finally:
        if server.thread.is_alive():
            server.stop()


def test_a_batch_whose_image_urls_die_after_intake_still_renders_every_video(
    tmp_path: Path, settings: object
) -> None:
    images = {"/mug.png": png_bytes("#336699", (64, 48)), "/cup.png": png_bytes("#993366")}
    with (
        image_server(images) as shop,
        running_stack(tmp_path, settings={"ALLOW_PRIVATE_URLS": "true"}) as stack,
        api_user(inflight_limit=1) as user,
    ):
        items = [
            {
                "ref": f"sku-{n}",
                "title": f"Mug {n}",
                "images": [shop.url("/mug.png"), shop.url("/cup.png")],
                "options": {"duration_s": 5},
            }
            for n in range(5)
        ]
        items.append({"ref": "gone", "title": "Gone", "images": [shop.url("/gone.png")]})
        batch = user.post("/v1/batches", json={"name": "urls", "items": items})

        def kept_or_failed() -> bool:
            jobs = batch_jobs(batch["id"])
            return all(
                job.state == "failed" or len((job.checkpoint or {}).get("fetched") or {}) == 2
                for job in jobs
            )

        wait_for(kept_or_failed, 60, "every job's image URLs kept in storage")
        queued = [job for job in batch_jobs(batch["id"]) if job.state == "queued"]
        assert queued, "one job in flight at a time: the others were kept while still queued"
        shop.stop()

        jobs = wait_for(lambda: all_final(batch["id"]), 240, "every job to finish")
        *good, gone = jobs
        assert all(job.state == "succeeded" for job in good), describe(jobs)
        assert gone.state == "failed" and gone.error_code == "input_unreachable", describe(jobs)
        assert "HTTP 404" in (gone.error_message or ""), gone.error_message
        assert "session_id" not in (gone.checkpoint or {}), "it failed before a backend session"
        created = sum(stack.emulator.stats()["requests"].get(CREATE_SESSION, {}).values())
        assert created == len(good)

        inputs = [path for path in (tmp_path / "storage" / "inputs").rglob("*.png")]
        assert len(inputs) == 2, "each image is one object however many jobs use it"
        assert shop.requests["/mug.png"] <= 2 and shop.requests["/cup.png"] <= 2
        for job in good:
            assert set(job.checkpoint["uploads"]) == {shop.url("/mug.png"), shop.url("/cup.png")}
