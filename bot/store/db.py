"""One engine per database URL, and sessions from it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

from bot.store import models  # noqa: F401  (registers the tables)


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """The engine for `url`; SQLite gets WAL and a busy timeout so web and worker can share it."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # hide_parameters: a failed statement's message (logged, or kept with a failed job) never
    # carries the phone numbers and texts bound into it.
    return reads_end_in_commit(create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True
    ))


_WROTE = "SELECT txid_current_if_assigned()"


def reads_end_in_commit(engine: Engine) -> Engine:
    """On PostgreSQL, a transaction that wrote nothing ends in COMMIT where SQLAlchemy would
    roll it back (a session closed after reading); one that wrote anything still rolls back.

    psycopg prepares a statement on the server once it has run a few times on a connection,
    so PostgreSQL stops planning it anew each time; but at every ROLLBACK psycopg forgets all
    of them and sends DEALLOCATE ALL. With each read session rolled back, almost no statement
    stayed prepared. For a transaction that wrote nothing, COMMIT and ROLLBACK end it alike;
    PostgreSQL says whether it wrote: a transaction is given an id at its first write (a row
    lock included), never before.
    """
    if engine.dialect.name != "postgresql":
        return engine
    dialect = engine.dialect
    roll_back = type(dialect).do_rollback

    def do_rollback(connection: Any) -> None:
        driver = getattr(connection, "dbapi_connection", connection)
        try:
            if driver.info.transaction_status == TransactionStatus.INTRANS:
                with driver.cursor() as cursor:
                    cursor.execute(_WROTE)
                    row = cursor.fetchone()
                if row is not None and row[0] is None:
                    driver.commit()
                    return
        except psycopg.Error:
            pass  # the connection failed: the rollback below reports it as before
        roll_back(dialect, connection)

    dialect.do_rollback = do_rollback  # type: ignore[method-assign]
    return engine


def insert(session: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    """`INSERT` for `table` in the session's dialect, with its `ON CONFLICT` clauses."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    # Settings refuse any other database, so this is a programming error, not a user's.
    raise ValueError(f"Tend runs on PostgreSQL or SQLite, not {dialect}")


def insert_or_ignore(session: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    """`INSERT ... ON CONFLICT DO NOTHING` for `table` in the session's dialect.

    One statement instead of a savepoint and a flush that may fail: a row that would break a
    unique constraint is skipped, and the statement's rowcount (or RETURNING) says what went in.
    """
    return insert(session, table).on_conflict_do_nothing()


def create_tables(engine: Engine) -> None:
    """Create any missing table (local use and tests; deployments run Alembic migrations)."""
    SQLModel.metadata.create_all(engine)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
