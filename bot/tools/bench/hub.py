"""The hub and the send with a year of history: they must cost no more than with a week.

Two participants of Positive Parenting (open-ended here, so a year of it is a year of the same
practices) get their history written in bulk: a micro intervention every five days, a practice
a day with its answer, a weekly stress question, the narratives, the decision points and every
delivery's statuses. Each is then at the same moment of the same intervention (gratitude, two
evenings answered), so the hub takes the same path for both: the run is over, its outcome is
judged, the next practice is chosen and planned, its narrative queued. The send is the next
gratitude evening: its decision rules, then its template rendered. Each is timed in a
transaction that is rolled back, so every repetition starts from the same rows.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, event, insert, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.care import hub
from bot.care.context import message_context
from bot.care.decisions import decide
from bot.care.narrative import render
from bot.care.program import EventSpec, Intervention, Program
from bot.care.programs import programs_in
from bot.clock import now
from bot.settings import PROJECT_ROOT
from bot.store.models import (
    Answer,
    DecisionPoint,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    InboundMessage,
    InterventionRun,
    Participant,
)

PROGRAM = "positive-parenting"
PAST = "breathing_space"  # what the history is made of (not achieved: it stays a candidate)
CURRENT = "gratitude"  # the intervention both participants are in now
HISTORIES = (("week", 7), ("year", 365))
RUN_DAYS = 5
FIRST_NUMBER = 6179000000  # +1 617 900 0000 onwards: apart from the other sections' numbers
RUNS = 15  # repetitions of each measurement; the median is reported
TABLES = (DeliveryEvent, DecisionPoint, Answer, InboundMessage, Delivery, InterventionRun)


@dataclass
class Cost:
    label: str
    rows: int  # history rows written for the participant
    hub_ms: list[float]
    hub_statements: int
    send_ms: list[float]
    send_statements: int

    @property
    def hub(self) -> float:
        return statistics.median(self.hub_ms)

    @property
    def send(self) -> float:
        return statistics.median(self.send_ms)


class _Writer:
    """One participant's history, as rows for bulk INSERTs, written table by table."""

    def __init__(self, session: Session, program: Program, participant_id: int) -> None:
        self.session, self.program, self.participant_id = session, program, participant_id
        self.rows = 0

    def insert(self, model: type, values: list[dict[str, Any]]) -> list[int]:
        if not values:
            return []
        table = model.__table__  # type: ignore[attr-defined]
        self.rows += len(values)
        found = self.session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), values
        )
        return list(found.scalars())

    def run(self, intervention: Intervention, started: datetime, ended: datetime | None,
            outcome: str | None) -> int:
        [run_id] = self.insert(InterventionRun, [{
            "participant_id": self.participant_id, "intervention": intervention.key,
            "level": intervention.level, "reason": "level 1 of 4 comes first",
            "started_at": started, "ends_at": started + timedelta(days=RUN_DAYS),
            "ended_at": ended, "outcome": outcome, "end_reason": "completed" if ended else None,
            "program_version": self.program.version,
        }])
        return run_id

    def sent(self, run_id: int | None, specs: list[tuple[str, str, str, Any, datetime]],
             values: list[float | None]) -> list[int]:
        """Deliveries sent and delivered: (kind, event key, template, assessment, sent at);
        an answer for each that asked, `values` in turn (None: recorded missing)."""
        ids = self.insert(Delivery, [{
            "participant_id": self.participant_id, "kind": kind, "event_key": key,
            "run_id": run_id, "template": template, "context": {"occurrence": 1, "times": 1},
            "assessment": assessment, "due_at": at, "status": DeliveryStatus.DELIVERED,
            "via": "api", "attempts": 1, "claimed_at": at, "send_started_at": at,
            "body": f"{key or kind}: a text as it was sent", "segments": 1,
            "program_version": self.program.version, "created_at": at, "sent_at": at,
            "final_at": at,
        } for kind, key, template, assessment, at in specs])
        self.insert(DeliveryEvent, [
            {"delivery_id": delivery_id, "status": status, "at": at}
            for delivery_id, (*_, at) in zip(ids, specs, strict=True)
            for status in (DeliveryStatus.ACCEPTED, DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
        ])
        asked = [(i, at) for i, (_, _, _, spec, at) in zip(ids, specs, strict=True) if spec]
        replies = [(i, at, value) for (i, at), value in zip(asked, values, strict=False)]
        texts = self.insert(InboundMessage, [{
            "message_sid": f"SMbench{self.participant_id:08d}{i:018d}",
            "participant_id": self.participant_id, "from_phone": "+1", "to_phone": "+1",
            "body": str(int(value)), "intent": "answer", "received_at": at + timedelta(minutes=9),
        } for i, at, value in replies if value is not None])
        inbound = iter(texts)
        self.insert(Answer, [{
            "participant_id": self.participant_id, "delivery_id": i, "missing": value is None,
            "inbound_message_id": None if value is None else next(inbound),
            "raw": "" if value is None else str(int(value)), "value": value,
            "answered_at": at + timedelta(minutes=9 if value is not None else 60 * 12),
        } for i, at, value in replies])
        return ids

    def decisions(self, run_id: int, deliveries: list[int], at: list[datetime],
                  key: str) -> None:
        self.insert(DecisionPoint, [{
            "participant_id": self.participant_id, "run_id": run_id, "delivery_id": delivery_id,
            "decision": f"{key}#{n}@{run_id}", "available": True, "probability": None,
            "choice": key.rpartition("/")[2], "program_version": self.program.version,
            "decided_at": moment, "outcome": 3.0, "outcome_status": "answered",
            "outcome_at": moment + timedelta(minutes=9),
        } for n, (delivery_id, moment) in enumerate(zip(deliveries, at, strict=True), start=1)])


def _asking(intervention: Intervention) -> EventSpec:
    return next(e for e in intervention.events if e.assessment and not e.alternative)


def _history(writer: _Writer, days: int, moment: datetime) -> None:
    """`days` of the past: runs of PAST, a practice a day, a stress question a week."""
    program, assessment = writer.program, None
    past = program.intervention(PAST)
    assert past is not None and program.hub is not None and program.hub.state is not None
    practice = _asking(past)
    assert practice.assessment is not None
    assessment = practice.assessment.as_dict()
    state = {**program.hub.state.assessment.as_dict(), "state_key": program.hub.state.key}
    first = moment - timedelta(days=days + 2)
    for start in range(0, days, RUN_DAYS):
        began = first + timedelta(days=start)
        length = min(RUN_DAYS, days - start)
        run_id = writer.run(past, began, began + timedelta(days=length), "not achieved")
        writer.sent(run_id, [("narrative", None, program.hub.narrative or "", None, began)], [])
        moments = [began + timedelta(days=d, hours=1) for d in range(length)]
        key = f"{PAST}/{practice.key}"
        prompts = writer.sent(
            run_id, [("event", f"{key}#{n + 1}", practice.template, assessment, at)
                     for n, at in enumerate(moments)],
            [None if n % 4 == 3 else 3.0 for n in range(length)],
        )
        writer.decisions(run_id, prompts, moments, key)
    weekly = [first + timedelta(days=d, hours=2) for d in range(0, days, 7)]
    writer.sent(None, [("state", f"state/{program.hub.state.key}", program.hub.state.template,
                        state, at) for at in weekly], [2.0] * len(weekly))


def _present(writer: _Writer, moment: datetime) -> int:
    """Two answered evenings of CURRENT, and the next one queued: its delivery id."""
    program = writer.program
    current = program.intervention(CURRENT)
    assert current is not None
    evening = next(e for e in current.events if e.is_decision_point and not e.alternative)
    assert evening.assessment is not None
    began = moment - timedelta(days=2, hours=3)
    run_id = writer.run(current, began, None, None)
    key = f"{CURRENT}/{evening.key}"
    asked = [began + timedelta(days=d, hours=1) for d in range(2)]
    prompts = writer.sent(
        run_id, [("event", f"{key}#{n + 1}", evening.template, evening.assessment.as_dict(), at)
                 for n, at in enumerate(asked)], [4.0, 4.0],
    )
    writer.decisions(run_id, prompts, asked, key)
    [queued] = writer.insert(Delivery, [{
        "participant_id": writer.participant_id, "kind": "event", "event_key": f"{key}#3",
        "run_id": run_id, "template": evening.template,
        "context": {"occurrence": 3, "times": evening.times},
        "assessment": evening.assessment.as_dict(), "due_at": moment,
        "status": DeliveryStatus.QUEUED, "via": "api", "claimed_at": moment,
        "program_version": program.version, "created_at": began,
    }])
    return queued


def _participant(engine: Engine, program: Program, index: int, days: int,
                 moment: datetime) -> tuple[int, int, int]:
    """(participant id, the queued delivery's id, history rows) for one participant."""
    with Session(engine) as session:
        enrolled = moment - timedelta(days=days + 3)
        [participant_id] = session.execute(
            insert(Participant.__table__).returning(Participant.__table__.c.id),  # type: ignore[attr-defined]
            [{"phone": f"+1{FIRST_NUMBER + index}", "program": program.name,
              "timezone": "America/New_York", "enrolled_at": enrolled, "enrolled_via": "import",
              "attributes": {}}],
        ).scalars()
        writer = _Writer(session, program, participant_id)
        _history(writer, days, moment)
        queued = _present(writer, moment)
        session.commit()
    return participant_id, queued, writer.rows


@contextmanager
def _counted(engine: Engine) -> Iterator[list[int]]:
    """Counts the statements sent meanwhile (in the list's one item)."""
    count = [0]

    def seen(*_: Any) -> None:
        count[0] += 1

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def _time(engine: Engine, work: Callable[[Session], None],
          prepare: Callable[[Session], None]) -> tuple[list[float], int]:
    """`work` timed in RUNS fresh transactions, each rolled back; the statements of the last."""
    timings, statements = [], 0
    for _ in range(RUNS + 1):  # the first warms the caches and is not counted
        with Session(engine, expire_on_commit=False) as session:
            prepare(session)
            with _counted(engine) as count:
                started = time.perf_counter()
                work(session)
                session.flush()
                timings.append((time.perf_counter() - started) * 1000)
            statements = count[0]
            session.rollback()
    return timings[1:], statements


def _measure(engine: Engine, program: Program, label: str, participant_id: int, queued: int,
             rows: int, moment: datetime) -> Cost:
    def over(session: Session) -> None:
        # The run's last evening is not to come: its questions all answered, the run is over.
        session.execute(update(Delivery).where(Delivery.id == queued)  # type: ignore[arg-type]
                        .values(status=DeliveryStatus.CANCELLED, final_at=moment))

    def evaluation(session: Session) -> None:
        participant = session.get(Participant, participant_id)
        assert participant is not None
        participant.evaluation_reason = "ended"
        what = hub.evaluate(session=session, participant=participant, program=program,
                            moment=moment)
        assert what.startswith("started"), what

    def send(session: Session) -> None:
        participant = session.get(Participant, participant_id)
        delivery = session.get(Delivery, queued)
        assert participant is not None and delivery is not None
        decision = decide(session=session, participant=participant, program=program,
                          delivery=delivery, moment=moment)
        assert decision.action == "send", decision
        render(program, delivery.template or "", message_context(
            session=session, participant=participant, program=program, delivery=delivery))

    hub_ms, hub_statements = _time(engine, evaluation, over)
    send_ms, send_statements = _time(engine, send, lambda _: None)
    return Cost(label, rows, hub_ms, hub_statements, send_ms, send_statements)


def _analyze(engine: Engine) -> None:
    """Table statistics as a database that grew to this size has them (autovacuum's ANALYZE)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for model in (*TABLES, Participant):
            connection.execute(text(f"ANALYZE {model.__tablename__}"))


def _clean(engine: Engine, participant_ids: list[int]) -> None:
    """Remove the two participants and everything written for them."""
    theirs = select(Delivery.id).where(col(Delivery.participant_id).in_(participant_ids))
    with Session(engine) as session:
        session.execute(delete(DeliveryEvent).where(col(DeliveryEvent.delivery_id).in_(theirs)))
        for model in TABLES[1:]:
            session.execute(delete(model).where(
                model.participant_id.in_(participant_ids)  # type: ignore[attr-defined]
            ))
        session.execute(delete(Participant).where(col(Participant.id).in_(participant_ids)))
        session.commit()


def run_hub(engine: Engine, *, say: Callable[[str], None]) -> dict[str, Any]:
    """Time one hub evaluation and one send's decisions and rendering, with a week and with a
    year of history; print the table; return the figures."""
    program = programs_in(PROJECT_ROOT / "narratives")[PROGRAM]
    program = dataclasses.replace(program, duration_days=None)
    moment = now().replace(microsecond=0)
    say(f"Hub and send with a week and a year of history ({PROGRAM}, median of {RUNS}, "
        f"each in a transaction rolled back)")
    made = [(label, *_participant(engine, program, index, days, moment))
            for index, (label, days) in enumerate(HISTORIES)]
    _analyze(engine)
    try:
        costs = [_measure(engine, program, label, pid, queued, rows, moment)
                 for label, pid, queued, rows in made]
    finally:
        _clean(engine, [pid for _, pid, _, _ in made])
    say(f"   {'history':<9}{'rows':>7}   {'hub evaluation':>24}   {'decide + render a send':>24}")
    for cost in costs:
        say(f"   {cost.label:<9}{cost.rows:>7,}   {cost.hub:>9.2f} ms ({cost.hub_statements:>3} "
            f"statements)   {cost.send:>9.2f} ms ({cost.send_statements:>3} statements)")
    week, year = costs
    hub_ratio, send_ratio = year.hub / week.hub, year.send / week.send
    say(f"   ratio year/week: hub {hub_ratio:.2f}, send {send_ratio:.2f}")
    return {
        "hub_ms_week": round(week.hub, 2), "hub_ms_year": round(year.hub, 2),
        "hub_year_over_week": round(hub_ratio, 2),
        "hub_statements_week": week.hub_statements, "hub_statements_year": year.hub_statements,
        "send_ms_week": round(week.send, 2), "send_ms_year": round(year.send, 2),
        "send_year_over_week": round(send_ratio, 2),
        "send_statements_week": week.send_statements,
        "send_statements_year": year.send_statements,
        "hub_history_rows": {cost.label: cost.rows for cost in costs},
    }
