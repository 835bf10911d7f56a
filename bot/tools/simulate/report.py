"""What a simulation did, read back from the database: one participant's transcript, and the
summary of the whole population."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.care.programs import programs_in
from bot.care.timing import in_quiet_hours, zone
from bot.clock import as_utc
from bot.settings import Settings
from bot.store.models import (
    Answer,
    DecisionPoint,
    Delivery,
    DeliveryStatus,
    InboundMessage,
    InterventionRun,
    Participant,
)
from bot.tools.simulate.plan import Outcome, SimulationError

NOT_RECEIVED = (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED)


def stamp(moment: datetime, tz: str) -> str:
    """A moment as the participant's clock shows it: "Mon 2026-03-02 09:00"."""
    return as_utc(moment).astimezone(zone(tz)).strftime("%a %Y-%m-%d %H:%M")


# --- one participant's conversation ------------------------------------------------------------

Entry = tuple[datetime, int, int, list[str]]  # (moment, order at the same moment, id, lines)


def transcript(engine: Engine, participant_id: int) -> list[str]:
    """One participant's conversation in order, stamped in their local time; each reply says
    which question it was credited to, and questions recorded unanswered are marked."""
    with Session(engine) as session:
        participant = session.get(Participant, participant_id)
        if participant is None:
            raise SimulationError(f"no participant {participant_id}")
        sent = session.exec(
            select(Delivery).where(
                Delivery.participant_id == participant_id,
                col(Delivery.sent_at).is_not(None),
                col(Delivery.body).is_not(None),
            )
        ).all()
        received = session.exec(
            select(InboundMessage).where(InboundMessage.participant_id == participant_id)
        ).all()
        answers = session.exec(
            select(Answer, Delivery)
            .join(Delivery, col(Delivery.id) == col(Answer.delivery_id))
            .where(Answer.participant_id == participant_id)
        ).all()
    # A text comes before the bot's answer to it, and a missing answer after both.
    entries = [*_sent_entries(sent), *_received_entries(received, answers)]
    entries += [
        (as_utc(answer.answered_at), 2, answer.id, [f"      (no answer to {_question(asked)})"])
        for answer, asked in answers
        if answer.missing and answer.id is not None
    ]
    entries.sort(key=lambda entry: entry[:3])
    output: list[str] = []
    for moment, _, _, lines in entries:
        when = stamp(moment, participant.timezone)
        output.append(f"{when}  {lines[0]}")
        output.extend(f"{' ' * len(when)}  {line}" for line in lines[1:])
    return output


def _sent_entries(sent: list[Delivery]) -> list[Entry]:
    entries = []
    for delivery in sent:
        assert delivery.sent_at is not None and delivery.id is not None
        note = f"   [{delivery.status}]" if delivery.status in NOT_RECEIVED else ""
        lines = (delivery.body or "").splitlines() or [""]
        entries.append(
            (as_utc(delivery.sent_at), 1, delivery.id,
             [f"bot > {lines[0]}{note}", *(f"      {line}" for line in lines[1:])])
        )
    return entries


def _received_entries(
    received: list[InboundMessage], answers: list[tuple[Answer, Delivery]]
) -> list[Entry]:
    credited = {answer.inbound_message_id: (answer, asked) for answer, asked in answers}
    entries = []
    for message in received:
        assert message.id is not None
        if message.id in credited:
            answer, asked = credited[message.id]
            value = answer.label if answer.label is not None else answer.value
            shown = "kept as text" if value is None else f"= {_number(value)}"
            note = f"[answers {_question(asked)} {shown}]"
        elif message.intent == "answer":
            note = "[not understood]"
        else:
            note = f"[{message.intent}]" if message.intent else ""
        lines = message.body.splitlines() or [""]
        entries.append(
            (as_utc(message.received_at), 0, message.id,
             [f"you < {lines[0]}" + (f"   {note}" if note else ""),
              *(f"      {line}" for line in lines[1:])])
        )
    return entries


def _question(delivery: Delivery) -> str:
    return delivery.event_key or delivery.kind


def _number(value: float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- the whole population ------------------------------------------------------------------------


@dataclass
class Summary:
    """The whole-journey figures of a simulation, read back from the database."""

    figures: dict[str, Any]
    by_persona: dict[str, dict[str, int]]
    outcomes: dict[str, dict[str, int]]
    randomization: list[dict[str, Any]]


@dataclass
class _Rows:
    """What the summary counts, read in one session."""

    people: dict[int, Participant]
    sent: list[tuple[Any, ...]]
    texts: list[tuple[int, int]]
    answers: list[tuple[int, bool, int]]
    runs: list[tuple[str, str | None, int]]
    decisions: list[tuple[str, str, bool, float | None]]


def _read(engine: Engine, ids: list[int]) -> _Rows:
    with Session(engine) as session:
        people = session.exec(select(Participant).where(col(Participant.id).in_(ids))).all()
        return _Rows(
            people={p.id: p for p in people if p.id is not None},
            sent=list(session.exec(
                select(
                    Delivery.participant_id, Delivery.via, Delivery.kind, Delivery.status,
                    Delivery.sent_at, Delivery.send_started_at, Delivery.assessment,
                ).where(col(Delivery.participant_id).in_(ids), col(Delivery.sent_at).is_not(None))
            ).all()),
            texts=list(session.exec(
                select(InboundMessage.participant_id, func.count())
                .where(col(InboundMessage.participant_id).in_(ids))
                .group_by(col(InboundMessage.participant_id))
            ).all()),
            answers=list(session.exec(
                select(Answer.participant_id, Answer.missing, func.count())
                .where(col(Answer.participant_id).in_(ids))
                .group_by(col(Answer.participant_id), col(Answer.missing))
            ).all()),
            runs=list(session.exec(
                select(InterventionRun.intervention, InterventionRun.outcome, func.count())
                .where(col(InterventionRun.participant_id).in_(ids))
                .group_by(col(InterventionRun.intervention), col(InterventionRun.outcome))
            ).all()),
            decisions=list(session.exec(
                select(
                    DecisionPoint.decision, DecisionPoint.choice, DecisionPoint.available,
                    DecisionPoint.probability,
                ).where(col(DecisionPoint.participant_id).in_(ids))
            ).all()),
        )


def _count_sent(
    rows: _Rows, settings: Settings, persona_of: dict[int, str],
    by_persona: dict[str, Counter[str]], totals: Counter[str],
) -> None:
    """Messages, questions, sends in quiet hours and messages after STOP, into `totals`."""
    programs = programs_in(settings.narratives_dir)
    confirmations: Counter[int] = Counter()
    for participant_id, via, kind, status, sent_at, started_at, assessment in rows.sent:
        person = rows.people[participant_id]
        totals["messages"] += 1
        totals["scheduled" if via == "api" else "webhook replies"] += 1
        if status in NOT_RECEIVED:
            totals["undelivered"] += 1
        if assessment is not None:
            totals["questions"] += 1
            by_persona[persona_of[participant_id]]["questions"] += 1
        # A send is timed from when the worker decided and called the provider.
        moment = as_utc(started_at or sent_at)
        if via == "api":
            program = programs.get(person.program)
            start, end = (program.quiet_hours if program and program.quiet_hours else None) or (
                settings.quiet_hours_start, settings.quiet_hours_end
            )
            totals["quiet"] += in_quiet_hours(moment, zone(person.timezone), start, end)
        if person.opted_out_at is not None and moment > as_utc(person.opted_out_at):
            if kind == "confirmation":
                confirmations[participant_id] += 1
            else:
                totals["after stop"] += 1
    totals["after stop"] += sum(count - 1 for count in confirmations.values())


def summarize(engine: Engine, settings: Settings, outcome: Outcome) -> Summary:
    """Count what happened, from the database (the simulation's participants only)."""
    ids = [p.id for p in outcome.participants]
    persona_of = {p.id: p.persona for p in outcome.participants}
    rows = _read(engine, ids)
    by_persona: dict[str, Counter[str]] = defaultdict(Counter)
    for simulated in outcome.participants:
        by_persona[simulated.persona]["participants"] += 1
        if rows.people[simulated.id].opted_out_at is not None:
            by_persona[simulated.persona]["opted out"] += 1
    totals: Counter[str] = Counter()
    _count_sent(rows, settings, persona_of, by_persona, totals)
    for participant_id, count in rows.texts:
        totals["texts"] += count
        by_persona[persona_of[participant_id]]["texts"] += count
    for participant_id, missing, count in rows.answers:
        key = "missing" if missing else "answers"
        totals[key] += count
        by_persona[persona_of[participant_id]][key] += count
    outcomes: dict[str, dict[str, int]] = defaultdict(dict)
    for intervention, result, count in rows.runs:
        outcomes[intervention][result or "running"] = count
    totals["opted out"] = sum(1 for p in rows.people.values() if p.opted_out_at is not None)
    totals["runs"] = sum(sum(o.values()) for o in outcomes.values())
    totals["decision points"] = len(rows.decisions)
    return Summary(
        figures=_figures(outcome, totals),
        by_persona={name: dict(counts) for name, counts in by_persona.items()},
        outcomes=dict(outcomes),
        randomization=_frequencies(rows.decisions),
    )


def _figures(outcome: Outcome, totals: Counter[str]) -> dict[str, Any]:
    wall = max(outcome.wall_seconds, 1e-9)
    days = (outcome.ended - outcome.started) / timedelta(days=1)
    plan = outcome.plan
    return {
        "program": plan.program,
        "persona": plan.persona,
        "participants": len(outcome.participants),
        "days": plan.days,
        "seed": plan.seed,
        "start": plan.start.isoformat(),
        "mode": outcome.mode,
        "messages": totals["messages"],
        "scheduled_messages": totals["scheduled"],
        "webhook_replies": totals["webhook replies"],
        "undelivered": totals["undelivered"],
        "texts": totals["texts"],
        "questions": totals["questions"],
        "answers": totals["answers"],
        "missing": totals["missing"],
        "quiet_hour_sends": totals["quiet"],
        "after_stop": totals["after stop"],
        "opted_out": totals["opted out"],
        "intervention_runs": totals["runs"],
        "decision_points": totals["decision points"],
        "errors": len(outcome.errors),
        "steps": outcome.steps,
        "wall_seconds": round(outcome.wall_seconds, 2),
        "simulated_days_per_second": round(days / wall, 2),
        "participant_days_per_second": round(days * len(outcome.participants) / wall, 1),
        "messages_per_second": round(totals["messages"] / wall, 1),
        **_parts(outcome),
    }


# The wall time no part of the bot's work took: the virtual clock, the personas, and the
# simulator's own reads of what reached each phone.
SIMULATOR = "the simulator (clock, personas, phones)"


def _parts(outcome: Outcome) -> dict[str, Any]:
    """Where the time went, part by part (in process): seconds, SQL statements and calls, the
    simulator's own share last."""
    if not outcome.parts:
        return {}
    parts = {
        name: {"seconds": round(part.seconds, 2), "statements": part.statements,
               "calls": part.calls}
        for name, part in outcome.parts.items()
    }
    own = outcome.wall_seconds - sum(part.seconds for part in outcome.parts.values())
    parts[SIMULATOR] = {"seconds": round(max(own, 0.0), 2)}
    return {"parts": parts}


def _frequencies(
    decisions: list[tuple[str, str, bool, float | None]],
) -> list[dict[str, Any]]:
    """Per decision rule (occurrences together) and choice: how often it was drawn, against the
    probability the program declared for it."""
    drawn: dict[str, Counter[str]] = defaultdict(Counter)
    declared: dict[tuple[str, str], list[float]] = defaultdict(list)
    unavailable: Counter[str] = Counter()
    for decision, choice, available, probability in decisions:
        rule = decision.split("#", 1)[0]
        if not available:
            unavailable[rule] += 1
            continue
        if probability is None:
            continue
        drawn[rule][choice] += 1
        declared[(rule, choice)].append(probability)
    rows = []
    for rule in sorted(drawn):
        total = sum(drawn[rule].values())
        for choice in sorted(drawn[rule]):
            probabilities = declared[(rule, choice)]
            rows.append(
                {
                    "decision": rule,
                    "choice": choice,
                    "n": drawn[rule][choice],
                    "of": total,
                    "observed": round(drawn[rule][choice] / total, 3),
                    "declared": round(sum(probabilities) / len(probabilities), 3),
                    "unavailable": unavailable[rule],
                }
            )
    return rows
