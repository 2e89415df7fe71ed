"""A pooled connection the server dropped (a Postgres restart) is replaced when the pool hands it
out: the statement that follows runs on a fresh connection instead of failing."""

import psycopg
from sqlalchemy import text

from core.db import autocommit, get_engine, reset_engine
from tests.conftest import ADMIN_DSN


def _backend_pid() -> int:
    with get_engine().connect() as connection:
        return int(connection.execute(text("select pg_backend_pid()")).scalar_one())


def test_a_connection_the_server_dropped_is_replaced_at_checkout(settings: object) -> None:
    reset_engine()  # one connection in the pool: the next checkout is the dropped one
    dropped = _backend_pid()
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute("select pg_terminate_backend(%s)", (dropped,))
    fresh = _backend_pid()
    assert fresh != dropped
    with autocommit() as connection:
        assert connection.execute(text("select 1")).scalar_one() == 1
