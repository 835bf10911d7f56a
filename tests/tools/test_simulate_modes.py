"""`bot simulate` in process and `bot simulate --full` tell the same story.

Each shipped program runs for two weeks with one seed, once through the bot's domain code in
this process and once over HTTP and RQ; the transcripts and what the database holds afterwards
(answers, decision points, micro interventions, deliveries and the statuses each reached,
texts received) must be the same.

What may differ, and is left out of the comparison: row ids and provider sids (in the full mode
four participants text the bot at once, so rows of different participants interleave in
another order, and the sandbox draws random sids), hence also the ids a delivery's context
points to (a reminder's prompt, a narrative's previous run), which are compared by what they
point to instead.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from bot.settings import Settings
from bot.store.models import (
    Answer,
    DecisionPoint,
    Delivery,
    DeliveryEvent,
    InboundMessage,
    InterventionRun,
    Participant,
)
from bot.tools.simulate import Plan, simulate, transcript

PROGRAMS = sorted(p.name for p in (Path(__file__).parents[2] / "narratives").iterdir()
                  if (p / "program.yaml").exists())


def test_every_shipped_program_is_simulated() -> None:
    assert {"daily-checkin", "medication-adherence", "positive-parenting"} <= set(PROGRAMS)


def journeys(engine: Engine) -> dict[str, Any]:
    """Everything the simulation left in the database, without row ids, by participant phone."""
    with Session(engine) as session:
        people = {p.id: p for p in session.exec(select(Participant)).all()}
        phone = {pid: p.phone for pid, p in people.items()}
        deliveries = {d.id: d for d in session.exec(select(Delivery)).all()}
        runs = {r.id: r for r in session.exec(select(InterventionRun)).all()}
        events: dict[int | None, list[str]] = {}
        for event in session.exec(select(DeliveryEvent)).all():
            events.setdefault(event.delivery_id, []).append(event.status)
        texts = {m.id: m for m in session.exec(select(InboundMessage)).all()}

        def run_of(run_id: int | None) -> tuple[Any, ...] | None:
            run = runs.get(run_id) if run_id is not None else None
            return (run.intervention, run.started_at) if run else None

        def delivery_of(delivery_id: int | None) -> tuple[Any, ...] | None:
            d = deliveries.get(delivery_id) if delivery_id is not None else None
            return (d.kind, d.event_key, d.due_at, d.created_at) if d else None

        def context_of(delivery: Delivery) -> dict[str, Any]:
            context = dict(delivery.context or {})
            if "reminds" in context:
                context["reminds"] = delivery_of(context["reminds"])
            if context.get("previous_run") is not None:
                context["previous_run"] = run_of(context["previous_run"])
            return context

        found: dict[str, Any] = {
            "participants": sorted(
                (p.phone, p.program, p.timezone, p.enrolled_at, p.opted_out_at, p.paused_at,
                 p.next_evaluation_at, p.evaluation_reason) for p in people.values()
            ),
            "transcripts": {p.phone: transcript(engine, pid) for pid, p in people.items()},
            "deliveries": sorted(
                (phone[d.participant_id], d.kind, d.via, d.event_key, d.template, d.due_at,
                 d.status, d.attempts, d.sent_at, d.send_started_at, d.final_at, d.body,
                 d.segments, d.error_code, d.error_message, d.program_version,
                 repr(d.assessment), repr(context_of(d)), run_of(d.run_id),
                 sorted(events.get(d.id, [])))
                for d in deliveries.values()
            ),
            "texts": sorted(
                (m.from_phone, m.received_at, m.body, m.intent, m.reply) for m in texts.values()
            ),
            "answers": sorted(
                (phone[a.participant_id], delivery_of(a.delivery_id), a.raw, a.missing, a.value,
                 a.label, a.answered_at,
                 texts[a.inbound_message_id].body if a.inbound_message_id else None)
                for a in session.exec(select(Answer)).all()
            ),
            "runs": sorted(
                (phone[r.participant_id], r.intervention, r.level, r.reason, r.started_at,
                 r.ends_at, r.ended_at, r.outcome, r.end_reason) for r in runs.values()
            ),
            "decision_points": sorted(
                (phone[p.participant_id], p.decision, p.available, p.probability, p.choice,
                 p.decided_at, p.outcome, p.outcome_status, p.outcome_at, run_of(p.run_id),
                 delivery_of(p.delivery_id))
                for p in session.exec(select(DecisionPoint)).all()
            ),
        }
    return found


def empty(engine: Engine) -> None:
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.mark.parametrize("program", PROGRAMS)
def test_both_modes_tell_the_same_two_weeks(
    program: str, settings: Settings, engine: Engine, redis_conn: object
) -> None:
    # One participant of each persona that texts on its own (STOP, CHECKIN) and one that
    # answers late and garbled, in two zones: a few people, every path.
    plan = Plan(program=program, persona="mix", participants=5, days=14, seed=7,
                start=date(2026, 3, 2), timezones=("America/New_York", "America/Los_Angeles"))
    told = {}
    for full in (False, True):
        empty(engine)
        outcome = simulate(plan, settings, full=full)
        assert outcome.errors == []
        told[full] = journeys(engine)
    in_process, over_http = told[False], told[True]
    assert in_process["transcripts"] == over_http["transcripts"]
    for part in ("participants", "texts", "answers", "runs", "decision_points", "deliveries"):
        assert in_process[part] == over_http[part], part
    assert sum(len(lines) for lines in in_process["transcripts"].values()) > 20
