"""Step leases kept alive from one side thread per process, however many steps it runs.

A running step's lease is renewed every quarter lease, so a killed worker's job is free again
within one lease however long a healthy step (a 15-minute stream) takes. One thread and one
UPDATE per tick serve all the steps of a process: a threads worker runs hundreds of streams.
"""

import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from core.db import get_engine
from core.repo.transitions import extend_leases
from core.settings import get_settings

log = logging.getLogger("worker.leases")


class LeaseKeeper:
    def __init__(self) -> None:
        self._held: Counter[tuple[uuid.UUID, uuid.UUID]] = Counter()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    @contextmanager
    def holding(self, job_id: uuid.UUID, lease: uuid.UUID) -> Iterator[None]:
        """Keep the job's lease `lease` (its fencing token) while the block runs."""
        key = (job_id, lease)
        with self._lock:
            self._held[key] += 1
            self._start_once()
        try:
            yield
        finally:
            with self._lock:
                self._held[key] -= 1
                if self._held[key] <= 0:
                    del self._held[key]

    def held(self) -> list[tuple[uuid.UUID, uuid.UUID]]:
        with self._lock:
            return list(self._held)

    def _start_once(self) -> None:
        # A forked child inherits the object but not the thread: start one per process.
        if self._thread is not None and self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._renew_forever, name="leases", daemon=True)
        self._thread.start()

    def _renew_forever(self) -> None:
        while True:
            lease_s = get_settings().step_lease_s
            time.sleep(lease_s / 4)
            held = self.held()
            if not held:
                continue
            try:
                with get_engine().begin() as connection:
                    extend_leases(connection, held, lease_s)
            except Exception:
                log.warning("could not renew the leases of %d jobs", len(held), exc_info=True)


leases = LeaseKeeper()
