"""One SQLAlchemy engine per process and the session scopes built on it.

The engine is created lazily, so a forked Celery child builds its own pool; `dispose_after_fork`
is called from `worker_process_init` as SQLAlchemy recommends.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from core.settings import get_settings

_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None


def get_engine() -> Engine:
    """The process's engine; `pool_pre_ping` rides out a Postgres restart."""
    global _engine, _session_factory
    if _engine is None:
        _engine = create_engine(
            get_settings().database_url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
            pool_recycle=1800,
        )
        _session_factory = sessionmaker(_engine, expire_on_commit=False)
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
