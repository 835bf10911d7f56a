"""The SQL outbox under contention: racing dispatchers, index use, schedules months ahead."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from freezegun import freeze_time
from rq import Queue
from sqlalchemy import event, insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.clock import now
from bot.delivery import outbox
from bot.delivery.queues import delivery_queue
from bot.store.models import Delivery, DeliveryStatus, Participant
from worker import dispatcher

# A participant whose program is big enough that the outbox holds thousands of their rows.
ROBIN = "+14155550190"


def participant(session: Session, phone: str = ROBIN) -> int:
    person = Participant(phone=phone, program="daily-checkin", timezone="UTC")
    session.add(person)
    session.commit()
    assert person.id is not None
    return person.id


def add_deliveries(engine: Engine, participant_id: int, due: list[datetime]) -> list[int]:
    """Scheduled outbox rows due at `due`, inserted in one round trip; returns their ids."""
    rows = [
        {"participant_id": participant_id, "kind": "event", "due_at": at, "body": "Hello",
         "status": DeliveryStatus.SCHEDULED, "via": "api", "attempts": 0, "created_at": now(),
         "context": {}}
        for at in due
    ]
    with engine.begin() as connection:
        return list(
            connection.execute(insert(Delivery).returning(Delivery.id), rows).scalars()
        )


def claim_in_threads(engine: Engine, threads: int, limit: int) -> list[list[list[int]]]:
    """Each thread claims batches until nothing is left; returns each thread's batches."""
    got: list[list[list[int]]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def dispatch(slot: int) -> None:
        start.wait()
        while batch := outbox.claim_due(engine=engine, limit=limit):
            got[slot].append(batch)

    workers = [threading.Thread(target=dispatch, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    return got


def test_dispatchers_racing_over_two_thousand_due_rows_claim_each_exactly_once(engine, session):
    person = participant(session)
    moment = now()
    ids = add_deliveries(engine, person, [moment - timedelta(seconds=i) for i in range(2000)])
    got = claim_in_threads(engine, threads=8, limit=37)
    batches = [batch for thread in got for batch in thread]
    claimed = [delivery_id for batch in batches for delivery_id in batch]
    assert sorted(claimed) == sorted(ids)  # none lost, none twice
    assert all(len(batch) <= 37 for batch in batches)  # a claim never takes more than asked
    assert sum(1 for thread in got if thread) > 1  # they really raced
    statuses = Counter(session.exec(select(Delivery.status)).all())
    assert statuses == {DeliveryStatus.QUEUED: 2000}


def queued_ids(queue: Queue) -> list[int]:
    return [delivery_id for job in queue.get_jobs() for delivery_id in job.args[0]]


def test_two_dispatcher_ticks_at_once_put_each_due_delivery_on_the_queue_once(
    engine, session, settings, redis_conn
):
    person = participant(session)
    ids = add_deliveries(engine, person, [now() - timedelta(seconds=i) for i in range(600)])
    quick = settings.with_overrides(dispatch_batch_size=25)
    queue = delivery_queue(quick, redis_conn)
    start = threading.Barrier(2)

    def tick() -> None:
        start.wait()
        dispatcher.tick(engine=engine, queue=queue, settings=quick)

    racing = [threading.Thread(target=tick) for _ in range(2)]
    for thread in racing:
        thread.start()
    for thread in racing:
        thread.join(timeout=60)
    assert sorted(queued_ids(queue)) == sorted(ids)


def claim_statements(engine: Engine) -> list[tuple[str, Any]]:
    """The SQL and parameters claim_due really sends, caught on the way to PostgreSQL."""
    seen: list[tuple[str, Any]] = []

    def catch(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "delivery" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", catch)
    try:
        claimed = outbox.claim_due(engine=engine, limit=500)
    finally:
        event.remove(engine, "before_cursor_execute", catch)
    assert len(claimed) == 100
    return seen


def test_the_claim_reads_the_status_and_due_index_not_the_whole_table(engine, session):
    person = participant(session)
    with engine.begin() as connection:
        # A year of schedules ahead, and a history of delivered messages behind.
        for status, sign in ((DeliveryStatus.SCHEDULED, "+"), (DeliveryStatus.DELIVERED, "-")):
            connection.execute(
                text(
                    "INSERT INTO delivery (participant_id, kind, due_at, status, via, attempts,"
                    f" created_at, context) SELECT :person, 'event', now() {sign}"
                    " make_interval(mins => g), :status, 'api', 0, now(), '{}'"
                    " FROM generate_series(1, 50000) AS g"
                ),
                {"person": person, "status": status.value},
            )
    add_deliveries(engine, person, [now() - timedelta(seconds=i) for i in range(100)])
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("ANALYZE delivery")
        )
    statements = claim_statements(engine)
    assert len(statements) == 2  # pick the due ids, then claim them
    with engine.connect() as connection:
        plans = [
            "\n".join(row[0] for row in connection.exec_driver_sql("EXPLAIN " + sql, params))
            for sql, params in statements
        ]
        connection.rollback()
    pick, claim = plans
    assert "ix_delivery_status_due" in pick, pick
    assert "delivery_pkey" in claim or "ix_delivery_status_due" in claim, claim
    assert not any("Seq Scan" in plan for plan in plans), plans


def test_a_schedule_months_ahead_is_kept_and_claimed_only_when_due(engine, session):
    person = participant(session)
    with freeze_time("2026-01-15 12:00:00+00:00") as clock:
        due = now() + timedelta(days=120)
        [later] = add_deliveries(engine, person, [due])
        assert outbox.claim_due(engine=engine, limit=10) == []
        clock.move_to(due - timedelta(seconds=1))
        assert outbox.claim_due(engine=engine, limit=10) == []
        assert session.get(Delivery, later).status == DeliveryStatus.SCHEDULED
        clock.move_to(due)
        assert outbox.claim_due(engine=engine, limit=10) == [later]
        assert outbox.claim_due(engine=engine, limit=10) == []
    session.expire_all()
    assert session.get(Delivery, later).status == DeliveryStatus.QUEUED
