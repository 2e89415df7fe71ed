"""A worker that is alive but no longer consuming exits by itself.

Celery workers can outlive their usefulness after a broker restart: the consumer's connection
is gone for good, or the consumer stops taking messages although it still answers pings. A
thread in the worker's main process checks every few seconds; when the worker has been unable
to consume for `WORKER_STALL_S` while its queues hold messages it could take, it logs why and
exits, so that whatever supervises it (`nemo-batch up`, compose's `restart:`, systemd) starts a
fresh one. While healthy it touches its heartbeat file (`NEMO_HEARTBEAT_FILE`), so a supervisor
also sees a worker that cannot run at all (stopped, wedged in C code).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import redis
from celery.signals import task_received, worker_ready, worker_shutting_down

from core.broker import consumer_key
from core.settings import get_settings

log = logging.getLogger("nemo.watchdog")

EXIT_STALLED = 75  # EX_TEMPFAIL: try again
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")  # kombu's Redis priority lists


class Watchdog(threading.Thread):
    def __init__(self, consumer: Any, heartbeat: Path | None) -> None:
        super().__init__(name="nemo-watchdog", daemon=True)
        settings = get_settings()
        self.consumer = consumer
        self.heartbeat = heartbeat
        self.check_every_s = settings.worker_heartbeat_s
        self.stall_s = settings.worker_stall_s
        self.queues = [queue.name for queue in consumer.task_consumer.queues]
        self.hostname = str(consumer.hostname)
        self.concurrency = int(consumer.controller.concurrency or 1)
        self.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
        self.last_received = time.monotonic()
        self.unhealthy_since: float | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.check_every_s):
            problem = self.problem()
            now = time.monotonic()
            if problem is None:
                self.unhealthy_since = None
                self._beat()
                continue
            self.unhealthy_since = self.unhealthy_since or now
            if now - self.unhealthy_since >= self.stall_s and not self.stopping.is_set():
                log.error(
                    "this worker cannot consume: %s, for %.0f s; exiting so that its supervisor "
                    "starts a fresh one",
                    problem,
                    now - self.unhealthy_since,
                )
                logging.shutdown()
                os._exit(EXIT_STALLED)

    def problem(self) -> str | None:
        """Why the worker cannot consume now, or None."""
        connection = getattr(self.consumer, "connection", None)
        if connection is None or not connection.connected:
            # Down together with the broker is no fault of the worker: it reconnects by itself.
            return "its broker connection is gone" if self._broker_answers() else None
        waiting = self._waiting()
        idle_s = time.monotonic() - self.last_received
        if waiting and idle_s >= self.stall_s and self._has_room():
            return f"{waiting} messages wait in {', '.join(self.queues)} and it took none"
        return None

    def _broker_answers(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def _waiting(self) -> int:
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    for suffix in PRIORITY_SUFFIXES:
                        pipe.llen(queue + suffix)
                return sum(int(n) for n in pipe.execute())
        except redis.RedisError:
            return 0

    def _has_room(self) -> bool:
        from celery.worker import state

        return len(state.reserved_requests) < self.concurrency

    def _beat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.touch()
        ttl = max(int(3 * self.check_every_s), 2)
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    pipe.set(consumer_key(queue, self.hostname), 1, ex=ttl)
                pipe.execute()
        except redis.RedisError:
            pass  # the broker is down: nobody consumes, which the key's expiry then says

    def saw_a_message(self) -> None:
        self.last_received = time.monotonic()


_watchdog: Watchdog | None = None


@worker_ready.connect
def _start(sender: Any = None, **_: Any) -> None:
    global _watchdog
    heartbeat = os.environ.get("NEMO_HEARTBEAT_FILE")
    _watchdog = Watchdog(sender, Path(heartbeat) if heartbeat else None)
    _watchdog._beat()
    _watchdog.start()


@task_received.connect
def _received(**_: Any) -> None:
    if _watchdog is not None:
        _watchdog.saw_a_message()


@worker_shutting_down.connect
def _stop(**_: Any) -> None:
    if _watchdog is not None:
        _watchdog.stopping.set()
