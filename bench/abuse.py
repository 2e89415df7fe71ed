"""The "abuse" table of `make chaos`: what one careless or hostile tenant sends, and what held.

    .venv/bin/python -m bench.chaos --only abuse

One stack (emulator, every worker pool, beat and an API process over HTTP) takes, in turn:
a 5-million-item JSON body; a 30-million-row CSV; 20 of those in parallel from 20 tenants and
20 from one tenant, while /healthz is asked every 0.1 s and the API's RSS read every 0.05 s; a
webhook receiver answering one byte a second beside a batch that must not wait for it; a
schedule's run endpoint called four times during a run; 300 one-item batches of one account
counted in backend balance reads. The disk-full row (`bench.disk_full`) runs a stack of its own
on a small tmpfs in a private mount namespace (root only), after the others.
"""

from __future__ import annotations

import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.stack import BenchStack, bench_stack, final_count, rss_mb, wait_until

SETTINGS = {
    "LOG_LEVEL": "WARNING",
    "ALLOW_PRIVATE_URLS": "true",
    "WEBHOOK_TIMEOUT_S": "3",
    "WRITE_RATE_PER_MINUTE": "100000",
    "WRITE_BURST": "100000",
}
RSS_LIMIT_MB = 300.0
HEALTH_LIMIT_S = 1.0
CHUNK = 256 * 1024


@dataclass
class Row:
    sent: str
    held: str
    ok: bool


def json_items(count: int) -> Iterator[bytes]:
    yield b'{"items": ['
    whole, rest = divmod(count - 1, CHUNK // 3)
    block = b"{}," * (CHUNK // 3)
    for _ in range(whole):
        yield block
    yield b"{}," * rest + b"{}]}"


def csv_rows(count: int) -> Iterator[bytes]:
    yield b"title\n"
    whole, rest = divmod(count, CHUNK // 2)
    block = b"x\n" * (CHUNK // 2)
    for _ in range(whole):
        yield block
    yield b"x\n" * rest


class Watch:
    """/healthz every 0.1 s and the API's RSS every 0.05 s, in threads, while a row runs."""

    def __init__(self, bench: BenchStack) -> None:
        self.bench = bench
        self.worst_health_s = 0.0
        self.health_failures = 0
        self.peak_rss_mb = 0.0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._health, daemon=True),
            threading.Thread(target=self._rss, daemon=True),
        ]

    def __enter__(self) -> Watch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _health(self) -> None:
        with httpx.Client(base_url=self.bench.api_url, timeout=10) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    ok = client.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                took = time.monotonic() - started
                self.worst_health_s = max(self.worst_health_s, took)
                self.health_failures += 0 if ok else 1
                self._stop.wait(0.1)

    def _rss(self) -> None:
        while not self._stop.is_set():
            self.peak_rss_mb = max(self.peak_rss_mb, rss_mb(self.bench.pgids("api"))[0])
            self._stop.wait(0.05)

    def held(self) -> tuple[str, bool]:
        ok = (
            self.peak_rss_mb < RSS_LIMIT_MB
            and self.worst_health_s < HEALTH_LIMIT_S
            and not self.health_failures
        )
        text = (
            f"API RSS peak {self.peak_rss_mb:.0f} MB (< {RSS_LIMIT_MB:.0f}); /healthz worst "
            f"{self.worst_health_s * 1000:.0f} ms, {self.health_failures} failed"
        )
        return text, ok


def _post(bench: BenchStack, headers: dict[str, str], kind: str, body: Iterator[bytes]) -> Any:
    with httpx.Client(base_url=bench.api_url, headers=headers, timeout=600) as client:
        answer = client.post("/v1/batches", headers={"Content-Type": kind}, content=body)
        return answer.status_code, answer.json().get("error", {}).get("code", "")


def _tenant_headers(bench: BenchStack, inflight_limit: int = 50) -> dict[str, str]:
    bench.make_tenant(inflight_limit=inflight_limit)
    return dict(bench.headers)


def big_bodies(bench: BenchStack) -> list[Row]:
    rows = []
    for label, kind, body in (
        ("one JSON body of 5,000,000 items (15 MB)", "application/json", json_items(5_000_000)),
        ("one CSV of 30,000,000 rows (60 MB)", "text/csv", csv_rows(30_000_000)),
    ):
        headers = _tenant_headers(bench)
        with Watch(bench) as watch:
            started = time.monotonic()
            status, code = _post(bench, headers, kind, body)
            took = time.monotonic() - started
        held, ok = watch.held()
        rows.append(Row(label, f"{status} {code} in {took:.1f} s; {held}", ok and status == 422))
    return rows


def parallel_bodies(bench: BenchStack, one_tenant: bool) -> Row:
    shared = _tenant_headers(bench)
    tenants = [shared if one_tenant else _tenant_headers(bench) for _ in range(20)]
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def send(index: int) -> None:
        headers = tenants[index]
        kind, body = (
            ("application/json", json_items(5_000_000))
            if index % 2
            else ("text/csv", csv_rows(30_000_000))
        )
        outcome = _post(bench, headers, kind, body)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=send, args=(index,)) for index in range(20)]
    with Watch(bench) as watch:
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.monotonic() - started
    held, ok = watch.held()
    tally: dict[str, int] = {}
    for status, code in results:
        tally[f"{status} {code}"] = tally.get(f"{status} {code}", 0) + 1
    answers = ", ".join(f"{n} x {what}" for what, n in sorted(tally.items()))
    who = "one tenant" if one_tenant else "20 tenants"
    refused = all(status in (422, 429) for status, _ in results) and len(results) == 20
    return Row(
        f"20 of those at once, from {who} (10 JSON, 10 CSV)",
        f"{answers} in {took:.1f} s; {held}",
        ok and refused,
    )


class Trickler:
    """A webhook receiver that answers one byte a second; it records how long each try held."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.holds: list[float] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}/hook"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        """From the request's arrival to the sender hanging up, seen within 0.05 s."""
        with connection, suppress(OSError):
            connection.recv(65536)
            started = time.monotonic()
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                connection.sendall(bytes([byte]))
                for _ in range(20):
                    time.sleep(0.05)
                    readable, _, _ = select.select([connection], [], [], 0)
                    if readable and not connection.recv(1, socket.MSG_PEEK):
                        self.holds.append(time.monotonic() - started)
                        return


def trickling_webhooks(bench: BenchStack) -> Row:
    receiver = Trickler()
    hooked = _tenant_headers(bench)
    plain = _tenant_headers(bench)
    items = [{"title": f"Hooked {n}", "options": {"duration_s": 5}} for n in range(10)]
    with httpx.Client(base_url=bench.api_url, timeout=60) as client:
        client.post(
            "/v1/batches",
            headers=hooked,
            json={"items": items, "webhook_url": receiver.url},
        ).raise_for_status()
        started = time.monotonic()
        answer = client.post(
            "/v1/batches",
            headers=plain,
            json={
                "items": [{"title": f"Plain {n}", "options": {"duration_s": 5}} for n in range(10)]
            },
        )
        answer.raise_for_status()
        plain_batch = answer.json()["id"]
    wait_until(lambda: final_count(plain_batch) == 10, 300, "the plain batch")
    plain_s = time.monotonic() - started
    wait_until(lambda: len(receiver.holds) >= 8, 120, "the receiver to be tried")
    receiver.server.close()
    longest = max(receiver.holds)
    ok = longest < 3.0 + 0.5
    return Row(
        "a webhook receiver answering 1 byte/s (WEBHOOK_TIMEOUT_S=3) beside a plain batch",
        f"plain batch of 10 final in {plain_s:.0f} s; {len(receiver.holds)} tries, the "
        f"longest held {longest:.1f} s (deadline 3 s)",
        ok,
    )


def slow_feed(delay_s: float) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay_s)
            body = b"ref,title\nsku-1,Stool\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/feed.csv"


def schedule_run_four_times(bench: BenchStack) -> Row:
    from sqlalchemy import func, select

    from core.db import session_scope
    from core.models import Batch, Schedule

    server, feed = slow_feed(6.0)
    headers = _tenant_headers(bench)
    with httpx.Client(base_url=bench.api_url, headers=headers, timeout=60) as client:
        body = {"name": "nightly", "cron": "0 3 * * *", "source_url": feed}
        schedule = client.post("/v1/schedules", json=body).json()
        key = uuid.UUID(schedule["id"])
        path = f"/v1/schedules/{schedule['id']}/run"
        first = client.post(path).status_code

        def running() -> bool:
            with session_scope() as session:
                row = session.get(Schedule, key)
                return row is not None and row.running_until is not None

        wait_until(running, 60, "the run to start")
        during = [client.post(path).status_code for _ in range(4)]

        def finished() -> bool:
            with session_scope() as session:
                row = session.get(Schedule, key)
                return row is not None and row.running_until is None and bool(row.last_outcome)

        wait_until(finished, 120, "the run to end")
        with session_scope() as session:
            made = session.scalar(
                select(func.count()).select_from(Batch).where(Batch.schedule_id == key)
            )
        client.delete(f"/v1/schedules/{schedule['id']}")
    server.shutdown()
    return Row(
        "a schedule's run endpoint called 4 times during a run (feed answers in 6 s)",
        f"first {first}, then {', '.join(map(str, during))}; {made} run(s) made",
        first == 202 and during == [409] * 4 and made == 1,
    )


def balance_reads(bench: BenchStack) -> Row:
    def credit_reads() -> int:
        requests = bench.stack.emulator.stats()["requests"]
        return sum(sum(codes.values()) for name, codes in requests.items() if "credits" in name)

    headers = _tenant_headers(bench, inflight_limit=0)  # they stay queued: every pass sees them
    before = credit_reads()
    started = time.monotonic()
    with httpx.Client(base_url=bench.api_url, headers=headers, timeout=60) as client:
        for n in range(300):
            client.post("/v1/batches", json={"items": [{"title": f"One {n}"}]}).raise_for_status()
    time.sleep(20)  # about ten dispatch passes over the 300 queued batches
    reads = credit_reads() - before
    seconds = time.monotonic() - started
    return Row(
        "300 one-item batches of one account, queued through ~10 dispatch passes",
        f"{reads} backend balance reads in {seconds:.0f} s (one account; before: 300 a pass)",
        reads <= 4,
    )


ROWS: list[Callable[[BenchStack], list[Row]]] = [
    big_bodies,
    lambda bench: [parallel_bodies(bench, one_tenant=False)],
    lambda bench: [parallel_bodies(bench, one_tenant=True)],
    lambda bench: [trickling_webhooks(bench)],
    lambda bench: [schedule_run_four_times(bench)],
    lambda bench: [balance_reads(bench)],
]


def run(tmp: Path) -> list[Row]:
    rows: list[Row] = []
    with bench_stack(
        tmp / "abuse",
        profile="ideal",
        time_scale=0.01,
        settings=SETTINGS,
        emulator_args=("--rate-limit-rps", "40", "--rate-limit-burst", "20", "--render-scale",
                       "0.05"),
    ) as bench:  # fmt: skip
        bench.start_workers(pipeline=2, stream=20)
        bench.start_api()
        for make in ROWS:
            for row in make(bench):
                print(f"   {'held' if row.ok else 'BROKE'}: {row.sent}: {row.held}", flush=True)
                rows.append(row)
    rows.append(disk_filled())
    return rows


def disk_filled() -> Row:
    """The disk-full row, in a process (and mount namespace) of its own."""
    from bench.disk_full import run_isolated

    found = run_isolated()
    row = Row(str(found["sent"]), str(found["held"]), bool(found["ok"]))
    print(f"   {'held' if row.ok else 'BROKE'}: {row.sent}: {row.held}", flush=True)
    return row


def print_table(rows: list[Row]) -> None:
    width = max(len(row.sent) for row in rows)
    print(f"\nabuse\n{'sent':{width}}  {'':5}  what held")
    for row in rows:
        print(f"{row.sent:{width}}  {'ok' if row.ok else 'BROKE':5}  {row.held}")
