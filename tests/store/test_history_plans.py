"""A participant's history is read through its indexes, by recency where the question allows:
what a decision or a hub evaluation reads never scans the whole of a history table."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from bot.care import hub
from bot.care.outcomes import record_missing, settle_decisions
from bot.care.programs import programs_in
from bot.care.state import engagement, outcomes_of, rule_state, state_of
from bot.clock import now
from bot.settings import PROJECT_ROOT

PEOPLE = 300  # a study's worth of participants, Kim (id 1) among them
DAYS = 60  # two months behind each of them: a practice a day, a stress question a week
YEAR = 365  # and a year behind Kim
HISTORY = ("delivery", "answer", "intervention_run", "decision_point")

# Rows in the order time wrote them, everyone's interleaved, as in a running deployment.
CROWD = """
INSERT INTO participant (phone, program, timezone, enrolled_at, enrolled_via, attributes)
SELECT '+1415600' || lpad(p::text, 4, '0'), 'positive-parenting', 'UTC',
       now() - interval '70 days', 'import', '{}'
FROM generate_series(1, :people) AS p;

INSERT INTO intervention_run (participant_id, intervention, level, reason, started_at,
                              ends_at, ended_at, outcome, end_reason)
SELECT p, 'breathing_space', 'calm', '', now() - make_interval(days => span - r * 5),
       now() - make_interval(days => span - r * 5 - 5),
       CASE WHEN r < span / 5 - 1 THEN now() - make_interval(days => span - r * 5 - 5) END,
       CASE WHEN r < span / 5 - 1 THEN 'not achieved' END, ''
FROM generate_series(1, :people) AS p,
     LATERAL (SELECT CASE WHEN p = 1 THEN :year ELSE :days END AS span) AS s,
     generate_series(0, span / 5 - 1) AS r
ORDER BY span - r * 5 DESC, p;

INSERT INTO delivery (participant_id, kind, event_key, context, assessment, due_at, status,
                      via, attempts, created_at, sent_at, final_at)
SELECT p, CASE WHEN d % 7 = 0 THEN 'state' ELSE 'event' END, 'practice#' || d, '{}',
       CAST(CASE WHEN d % 7 = 0 THEN '{"state_key": "stress", "timeout_hours": 36}'
                 ELSE '{"kind": "scale", "timeout_hours": 36}' END AS json),
       now() - make_interval(days => span - d), 'delivered', 'api', 1,
       now() - make_interval(days => span - d), now() - make_interval(days => span - d),
       now() - make_interval(days => span - d)
FROM generate_series(1, :people) AS p,
     LATERAL (SELECT CASE WHEN p = 1 THEN :year ELSE :days END AS span) AS s,
     generate_series(1, span) AS d
ORDER BY span - d DESC, p;

INSERT INTO answer (participant_id, delivery_id, raw, missing, value, answered_at)
SELECT participant_id, id, '3', d % 4 = 0, CASE WHEN d % 4 <> 0 THEN 3 END,
       sent_at + interval '9 minutes'
FROM (SELECT *, CAST(split_part(event_key, '#', 2) AS integer) AS d FROM delivery) AS sent
WHERE participant_id <> 1 OR d < :year  -- Kim's latest question is still open
ORDER BY id;

INSERT INTO decision_point (participant_id, delivery_id, decision, available, choice,
                            decided_at, outcome_status)
SELECT participant_id, id, event_key, true, 'practice', sent_at,
       CASE WHEN participant_id <> 1 OR sent_at < now() - interval '2 days' THEN 'answered' END
FROM delivery WHERE kind = 'event'
ORDER BY id;
"""


@pytest.fixture(scope="module")
def crowd(pg_engine: Engine) -> Engine:
    """Built once for the module: the tests here only read (and roll back)."""
    engine = pg_engine
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        for statement in CROWD.split(";\n"):
            if statement.strip():
                connection.execute(
                    text(statement), {"people": PEOPLE, "days": DAYS, "year": YEAR}
                )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in (*HISTORY, "participant"):
            connection.execute(text(f"VACUUM ANALYZE {table}"))
    return engine


@contextmanager
def plans(engine: Engine) -> Iterator[list[str]]:
    """The plans (EXPLAIN) of the SELECT statements sent meanwhile, filled in at the end."""
    sent: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().startswith("SELECT"):
            sent.append((statement, parameters))

    found: list[str] = []
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    with engine.connect() as connection:
        for statement, parameters in sent:
            rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters).scalars()
            found.append("\n".join(rows))


def whole_table_scans(plan: str) -> list[str]:
    return [t for t in HISTORY if re.search(rf"Seq Scan on {t}\b", plan)]


READS: dict[str, Callable[[Session], object]] = {
    "open questions": lambda s: record_missing(session=s, participant_id=1, moment=now()),
    "open decision points": lambda s: settle_decisions(session=s, participant_id=1,
                                                       moment=now()),
    "latest prompts": lambda s: engagement(s, 1, now()),
    "latest state answers": lambda s: state_of(
        s, 1, programs_in(PROJECT_ROOT / "narratives")["positive-parenting"]
    ),
    "outcomes": lambda s: outcomes_of(s, 1),
    "open run": lambda s: hub.open_run(s, 1),
    # The four above as a rule reads them, in one statement (with Kim's open run, if any).
    "a rule's state": lambda s: rule_state(
        s, 1, programs_in(PROJECT_ROOT / "narratives")["positive-parenting"],
        hub.open_run(s, 1), now(),
    ),
}


@pytest.mark.parametrize("what", READS)
def test_no_read_of_a_decision_or_evaluation_scans_a_whole_history_table(
    crowd: Engine, what: str
):
    with Session(crowd) as session, plans(crowd) as found:
        READS[what](session)
        session.rollback()
    assert found
    assert [whole_table_scans(plan) for plan in found] == [[]] * len(found), found


@pytest.mark.parametrize(("what", "index"), [
    ("latest prompts", "Index Scan Backward using ix_delivery_participant_sent"),
    ("latest state answers", "ix_delivery_participant_kind"),
    ("a rule's state", "Index Scan Backward using ix_delivery_participant_sent"),
    ("a rule's state", "ix_delivery_participant_kind"),
    ("open decision points", "ix_decision_point_participant_open"),
    ("open decision points", "ix_answer_participant_answered"),  # the answers since then
    ("open run", "ix_intervention_run_participant_ended"),
])
def test_recent_history_is_found_by_its_index(crowd: Engine, what: str, index: str):
    with Session(crowd) as session, plans(crowd) as found:
        READS[what](session)
        session.rollback()
    assert any(index in plan for plan in found), found


def test_the_crowd_is_as_described(crowd: Engine):
    """Kim has a year behind her, one question open and decision points waiting; everyone else
    two months and nothing open."""
    with crowd.connect() as connection:
        sent = dict(connection.execute(text(
            "SELECT participant_id, count(*) FROM delivery GROUP BY participant_id"
        )).all())
        open_points = connection.execute(text(
            "SELECT DISTINCT participant_id FROM decision_point WHERE outcome_status IS NULL"
        )).scalars().all()
        unanswered = connection.execute(text(
            "SELECT participant_id FROM delivery"
            " WHERE NOT EXISTS (SELECT 1 FROM answer WHERE delivery_id = delivery.id)"
        )).scalars().all()
        latest = connection.execute(text("SELECT max(sent_at) FROM delivery")).scalar()
    assert sent[1] == YEAR and set(sent.values()) == {YEAR, DAYS} and len(sent) == PEOPLE
    assert open_points == [1] and unanswered == [1]
    assert latest is not None and latest > now() - timedelta(minutes=1)
