"""The hub's claim of due evaluations under contention, on PostgreSQL."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.care import hub
from bot.clock import now
from bot.store.models import Participant

PHONES = itertools.count(1)


def add_participants(engine: Engine, evaluations: list[datetime | None]) -> list[int]:
    """One participant per entry, their next evaluation at it; returns their ids."""
    rows = [
        {"phone": f"+1415{next(PHONES):07d}", "program": "tiny", "timezone": "UTC",
         "enrolled_at": now(), "enrolled_via": "cli", "attributes": {},
         "next_evaluation_at": at, "evaluation_reason": "periodic" if at else None}
        for at in evaluations
    ]
    with engine.begin() as connection:
        return list(
            connection.execute(insert(Participant).returning(Participant.id), rows).scalars()
        )


def claim_in_threads(
    engine: Engine, threads: int, limit: int, moment: datetime
) -> list[list[list[int]]]:
    """Each thread claims batches (on its own connection) until nothing is left."""
    got: list[list[list[int]]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def dispatch(slot: int) -> None:
        try:
            start.wait()
            while batch := hub.claim_due(engine=engine, limit=limit, moment=moment):
                got[slot].append(batch)
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    workers = [threading.Thread(target=dispatch, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not failures, failures
    assert not any(worker.is_alive() for worker in workers)
    return got


def test_racing_claimers_take_disjoint_due_participants_and_never_more_than_the_limit(
    engine: Engine, session: Session
):
    moment = now()
    due = add_participants(engine, [moment - timedelta(seconds=i) for i in range(1500)])
    later = add_participants(
        engine, [moment + timedelta(seconds=1 + i) for i in range(300)] + [None] * 200
    )
    got = claim_in_threads(engine, threads=2, limit=29, moment=moment)
    batches = [batch for thread in got for batch in thread]
    claimed = [participant_id for batch in batches for participant_id in batch]
    assert sorted(claimed) == sorted(due)  # each due participant claimed once, by one claimer
    assert all(0 < len(batch) <= 29 for batch in batches)
    assert all(thread for thread in got)  # both claimers took some
    assert not set(claimed) & set(later)
    session.expire_all()
    leased = dict(session.exec(select(Participant.id, Participant.next_evaluation_at)).all())
    assert all(leased[i] == moment + hub.LEASE for i in due)
    assert [leased[i] for i in later[300:]] == [None] * 200
    assert all(leased[i] > moment for i in later[:300])  # untouched, still in the future
    assert [leased[i] for i in later[:300]] == [
        moment + timedelta(seconds=1 + i) for i in range(300)
    ]


def test_a_claim_picks_ids_then_leases_them_in_two_statements(engine: Engine):
    moment = now()
    due = add_participants(engine, [moment - timedelta(minutes=i) for i in range(10)])
    add_participants(engine, [moment + timedelta(minutes=1), None])
    seen: list[str] = []

    def catch(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "participant" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", catch)
    try:
        claimed = hub.claim_due(engine=engine, limit=4, moment=moment)
    finally:
        event.remove(engine, "before_cursor_execute", catch)
    assert claimed and set(claimed) <= set(due[-4:])  # the longest due first
    assert len(claimed) == 4
    pick, lease = seen
    assert pick.lstrip().upper().startswith("SELECT") and "SKIP LOCKED" in pick
    assert lease.lstrip().upper().startswith("UPDATE") and "SELECT" not in lease
    assert "next_evaluation_at <=" in lease  # still due: a claim never leases a future one


def test_a_participant_not_due_is_never_claimed(engine: Engine):
    moment = now()
    [soon] = add_participants(engine, [moment + timedelta(microseconds=1)])
    add_participants(engine, [None])
    assert hub.claim_due(engine=engine, limit=10, moment=moment) == []
    [due] = add_participants(engine, [moment])
    assert hub.claim_due(engine=engine, limit=10, moment=moment) == [due]
    assert hub.claim_due(engine=engine, limit=10, moment=moment) == []  # leased
    later = moment + hub.LEASE
    assert set(hub.claim_due(engine=engine, limit=10, moment=later)) == {soon, due}


def test_the_claim_reads_the_evaluation_index_and_leases_by_primary_key(engine: Engine):
    moment = now()
    with engine.begin() as connection:
        # Many participants whose next look is weeks ahead, and many with none planned.
        connection.execute(
            text(
                "INSERT INTO participant (phone, program, timezone, enrolled_at, enrolled_via,"
                " attributes, next_evaluation_at) SELECT '+1999' || lpad(g::text, 7, '0'),"
                " 'tiny', 'UTC', now(), 'cli', '{}',"
                " CASE WHEN g % 2 = 0 THEN now() + make_interval(mins => g) END"
                " FROM generate_series(1, 50000) AS g"
            )
        )
    due = add_participants(engine, [moment - timedelta(seconds=i) for i in range(50)])
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("ANALYZE participant")
        )
    seen: list[tuple[str, Any]] = []

    def catch(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "participant" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", catch)
    try:
        claimed = hub.claim_due(engine=engine, limit=500, moment=moment)
    finally:
        event.remove(engine, "before_cursor_execute", catch)
    assert sorted(claimed) == sorted(due)
    with engine.connect() as connection:
        plans = [
            "\n".join(row[0] for row in connection.exec_driver_sql("EXPLAIN " + sql, params))
            for sql, params in seen
        ]
        connection.rollback()
    pick, lease = plans
    assert "ix_participant_next_evaluation_at" in pick, pick
    assert "participant_pkey" in lease or "ix_participant_next_evaluation_at" in lease, lease
    assert not any("Seq Scan" in plan for plan in plans), plans
