"""One SQLAlchemy engine per process and the session scopes built on it.

The engine is created lazily, so a forked Celery child builds its own pool; `dispose_after_fork`
is called from `worker_process_init` as SQLAlchemy recommends.
"""

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.types.json import Jsonb
from sqlalchemy import JSON, ClauseElement, Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.compiler import Compiled

from core.pools import PoolPlan, plan_for
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)

_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None
_plan = PoolPlan(size=5, overflow=5)
"""Set by the process's command (`configure_pool`) before its first query."""


def configure_pool(role: str, concurrency: int) -> PoolPlan:
    """Size this process's pool for its role and concurrency (core/pools.py); prefork
    children inherit it and build their own pools of that size after the fork."""
    global _plan
    _plan = plan_for(role, concurrency)
    return _plan


def session_options(settings: Settings) -> dict[str, Any]:
    """Every connection ends a runaway statement and a transaction left idle."""
    if make_url(settings.database_url).get_backend_name() != "postgresql":
        return {}
    timeouts = (
        f"-c statement_timeout={int(settings.db_statement_timeout_s * 1000)} "
        "-c idle_in_transaction_session_timeout="
        f"{int(settings.db_idle_in_transaction_timeout_s * 1000)}"
    )
    return {"options": timeouts}


def get_engine() -> Engine:
    """The process's engine; every connection is pinged as the pool hands it out, so a
    Postgres restart costs a reconnect, not a failed statement (RELIABILITY.md)."""
    global _engine, _session_factory
    if _engine is None:
        settings = get_settings()
        on_psycopg = make_url(settings.database_url).get_driver_name() == "psycopg"
        _engine = create_engine(
            settings.database_url,
            pool_pre_ping=not on_psycopg,
            pool_size=_plan.size,
            max_overflow=_plan.overflow,
            pool_timeout=settings.db_pool_timeout_s,
            pool_recycle=1800,
            connect_args=session_options(settings),
        )
        if on_psycopg:
            event.listen(_engine, "checkout", _ping_on_checkout)
        _session_factory = sessionmaker(_engine, expire_on_commit=False)
        log.debug("database pool: %d + %d overflow", _plan.size, _plan.overflow)
    return _engine


def _ping_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """`pool_pre_ping`'s check at libpq's cost: an empty query on the wire, without the cursor
    and result objects SQLAlchemy's ping builds (a tenth of a millisecond of CPU each, at
    every checkout, bench figure 1). A dead connection is replaced: SQLAlchemy discards one
    that raises `DisconnectionError` here and hands out a fresh one."""
    try:
        answer = dbapi_connection.pgconn.exec_(b"")
    except psycopg.Error as error:
        raise DisconnectionError(f"the connection failed its ping: {error}") from error
    if answer.status != pq.ExecStatus.EMPTY_QUERY:
        raise DisconnectionError("the connection failed its ping: the server did not answer")


def dispose_after_fork() -> None:
    """Drop connections inherited from the parent without closing them under its feet."""
    if _engine is not None:
        _engine.dispose(close=False)


def reset_engine() -> None:
    """Forget the engine (tests switch databases between sessions)."""
    global _engine, _session_factory
    if _engine is not None:
        _engine.dispose()
    _engine = None
    _session_factory = None


def new_session() -> Session:
    get_engine()
    assert _session_factory is not None
    return _session_factory()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work for a request or a task: commit on success, roll back on error."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def autocommit() -> Iterator[Connection]:
    """A pooled connection whose every statement is its own transaction: for the hot path's
    single statements, which then need no BEGIN and COMMIT round trips around them."""
    with get_engine().connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


class HotStatement:
    """A statement run many times a second (a step's claim, advance and checkpoint saves),
    compiled once per process and run through psycopg on the caller's connection, in its
    transaction. SQLAlchemy's work around each execution cost more CPU than the statement
    itself (bench figure 1). Rows come back as psycopg gives them: states as plain strings."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: tuple[str, dict[str, Any], frozenset[str]] | None = None

    def first(self, connection: Connection, values: Mapping[str, Any]) -> Any:
        """The first row the statement returns, or None."""
        sql, constants, json_names = self._compile(connection)
        params = {**constants, **values}
        for name in json_names:
            if params.get(name) is not None:
                params[name] = Jsonb(params[name])
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() if cursor.description else None

    def _compile(self, connection: Connection) -> tuple[str, dict[str, Any], frozenset[str]]:
        if self._compiled is None:
            compiled: Compiled = self.statement.compile(dialect=connection.dialect)
            names = compiled.bind_names  # type: ignore[attr-defined]
            json_names = frozenset(
                name for bind, name in names.items() if isinstance(bind.type, JSON)
            )
            self._compiled = (compiled.string, dict(compiled.params), json_names)
        return self._compiled
