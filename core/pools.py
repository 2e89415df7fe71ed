"""Database connection pools sized from each process's concurrency, and their sum against
PostgreSQL's `max_connections`.

A prefork child runs one task at a time and needs one connection (and a spare for a nested
session); a threads worker or the API needs about one per thread that touches the database at
once. A fixed 10 + 20 per process would take 30 connections from each of a dozen processes and
pass PostgreSQL's default of 100.
"""

from dataclasses import dataclass

from sqlalchemy import Engine, text

ROLES = ("api", "pipeline", "stream", "webhooks", "schedules", "beat", "flower")
API_THREADS = 40
"""Starlette's thread pool (anyio's default): the API's sync routes that may query at once."""


@dataclass(frozen=True)
class PoolPlan:
    size: int
    overflow: int

    @property
    def most(self) -> int:
        return self.size + self.overflow


def plan_for(role: str, concurrency: int) -> PoolPlan:
    """The pool of one OS process of `role` running `concurrency` tasks or requests at once."""
    if role in ("pipeline", "webhooks", "schedules"):
        return PoolPlan(size=1, overflow=1)  # one prefork child: one task at a time
    if role == "stream":
        # Threads hold a connection only around their claim and commit, never across a stream.
        return PoolPlan(size=max(2, min(concurrency // 5, 20)), overflow=5)
    if role == "api":
        return PoolPlan(size=max(2, min(concurrency, 10)), overflow=5)
    return PoolPlan(size=1, overflow=1)  # beat, flower, commands


@dataclass(frozen=True)
class ProcessGroup:
    """`count` copies of a process of `role` with `concurrency` (children or threads)."""

    name: str
    role: str
    concurrency: int
    count: int = 1

    @property
    def connections(self) -> int:
        """At most, with every pool full: prefork children each have their own pool."""
        plan = plan_for(self.role, self.concurrency)
        pools = self.concurrency if self.role in ("pipeline", "webhooks", "schedules") else 1
        return self.count * pools * plan.most


def total_connections(groups: list[ProcessGroup]) -> int:
    return sum(group.connections for group in groups)


def max_connections(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SHOW max_connections")).scalar_one())


def budget_lines(groups: list[ProcessGroup], limit: int | None) -> list[str]:
    """What to print: each group's connections, their total and the server's limit."""
    lines = [f"{group.name}: up to {group.connections} connections" for group in groups]
    total = total_connections(groups)
    if limit is None:
        lines.append(f"total: up to {total} connections")
    else:
        verdict = "fits" if total <= limit - 3 else "EXCEEDS (raise max_connections or scale down)"
        lines.append(f"total: up to {total} of PostgreSQL's max_connections {limit}: {verdict}")
    return lines
