"""How sessions end on PostgreSQL: a read ends in COMMIT and keeps the prepared statements; a
write that is not committed is still rolled back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, func, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from bot.store.db import reads_end_in_commit
from bot.store.models import Participant
from tests.conftest import TEST_DATABASE_URL


@pytest.fixture
def one_connection(engine: Engine) -> Iterator[Engine]:
    """The schema of `engine`, through a pool of one connection, so every session meets the
    same server session."""
    single = reads_end_in_commit(create_engine(TEST_DATABASE_URL, pool_size=1, max_overflow=0))
    yield single
    single.dispose()


def _participant() -> Participant:
    return Participant(phone="+15550100001", program="daily-checkin", timezone="UTC",
                       enrolled_at=datetime(2026, 3, 2, 9, tzinfo=UTC))


def _prepared(engine: Engine) -> int:
    with engine.connect() as connection:
        held = connection.execute(text("SELECT count(*) FROM pg_prepared_statements"))
        return int(held.scalar_one())


def test_statements_run_in_read_sessions_stay_prepared(one_connection: Engine) -> None:
    # psycopg prepares a statement after its fifth run; a ROLLBACK at each session's end
    # would make it forget them all.
    for _ in range(8):
        with Session(one_connection) as session:
            session.exec(select(func.count()).select_from(Participant)).one()
    assert _prepared(one_connection) >= 1


def test_a_write_not_committed_is_rolled_back(one_connection: Engine) -> None:
    with Session(one_connection) as session:
        session.add(_participant())
        session.flush()
    with Session(one_connection) as session:
        session.add(_participant())
        session.flush()
        session.rollback()
    with Session(one_connection) as session:
        assert session.exec(select(func.count()).select_from(Participant)).one() == 0


def test_a_locking_read_is_rolled_back_and_a_failed_one_recovers(one_connection: Engine) -> None:
    with Session(one_connection) as session:
        session.add(_participant())
        session.commit()
    with Session(one_connection) as session:
        person = session.exec(select(Participant).with_for_update()).one()
        person.timezone = "Europe/Paris"
        session.flush()
    with Session(one_connection) as session, pytest.raises(DBAPIError):
        session.execute(text("SELECT 1 / 0"))
    with Session(one_connection) as session:
        assert session.exec(select(Participant.timezone)).one() == "UTC"
