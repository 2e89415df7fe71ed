"""One SQLAlchemy engine per process and the session scopes built on it.

The engine is created lazily, so a forked Celery child builds its own pool; `dispose_after_fork`
is called from `worker_process_init` as SQLAlchemy recommends.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

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
    """The process's engine; `pool_pre_ping` rides out a Postgres restart."""
    global _engine, _session_factory
    if _engine is None:
        settings = get_settings()
        _engine = create_engine(
            settings.database_url,
            pool_pre_ping=True,
            pool_size=_plan.size,
            max_overflow=_plan.overflow,
            pool_timeout=settings.db_pool_timeout_s,
            pool_recycle=1800,
            connect_args=session_options(settings),
        )
        _session_factory = sessionmaker(_engine, expire_on_commit=False)
        log.debug("database pool: %d + %d overflow", _plan.size, _plan.overflow)
    return _engine


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
