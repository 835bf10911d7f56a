"""The outbox claims due rows oldest first, equal due times by id, read off its index."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from bot.clock import now
from bot.delivery import outbox
from bot.store.models import Delivery, DeliveryStatus, Participant

# Kim's program plans a burst of messages for the same minute.
KIM = "+14155550173"


def kim(session: Session) -> int:
    person = Participant(phone=KIM, program="daily-checkin", timezone="UTC")
    session.add(person)
    session.commit()
    assert person.id is not None
    return person.id


def scheduled(engine: Engine, person: int, count: int, due_in: str) -> None:
    """`count` scheduled rows due at `now() + due_in`, all at the same moment."""
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO delivery (participant_id, kind, due_at, status, via, attempts,"
            " created_at, context) SELECT :person, 'event', date_trunc('minute', now())"
            f" + interval '{due_in}', 'scheduled', 'api', 0, now(), '{{}}'"
            " FROM generate_series(1, :count)"
        ), {"person": person, "count": count})


def test_rows_due_at_the_same_moment_are_claimed_in_the_order_they_were_planned(
    engine: Engine, session: Session
):
    scheduled(engine, kim(session), 40, "-1 minute")
    for status in (DeliveryStatus.QUEUED, DeliveryStatus.SCHEDULED):
        with engine.begin() as connection:
            # Put back and forth (a dispatcher that gave them up): the first twenty rows now
            # lie after the others on disk, and the claim must not follow where they lie.
            connection.execute(
                update(Delivery).where(col(Delivery.id) <= 20).values(status=status)
            )

    batches = []
    while batch := outbox.claim_due(engine=engine, limit=7):
        batches.append(batch)

    claimed = [row_id for batch in batches for row_id in batch]
    assert claimed == list(range(1, 41))


def test_the_claim_takes_its_order_from_the_status_and_due_index_without_sorting(
    engine: Engine, session: Session
):
    person = kim(session)
    scheduled(engine, person, 20000, "1 day")  # planned ahead
    scheduled(engine, person, 200, "-1 minute")  # due now, all at once
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("ANALYZE delivery")
        )
    picks: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().startswith("SELECT"):
            picks.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert len(outbox.claim_due(engine=engine, limit=50, moment=now())) == 50
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    [(pick, parameters)] = picks
    with engine.connect() as connection:
        plan = "\n".join(connection.exec_driver_sql("EXPLAIN " + pick, parameters).scalars())
    assert "ix_delivery_status_due" in plan, plan
    assert "Sort" not in plan, plan
    assert DeliveryStatus.SCHEDULED.value in plan
