"""Micro interventions: plan their events, decide each one when it comes due, judge the outcome.

Decisions are taken at send time, in the worker, with the participant's latest answers: a `when`
rule, a branch to an alternative event, a micro-randomized draw, re-engagement with back-off, or
ending the intervention early. Every decision point is logged (`DecisionPoint`).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select, update

from bot.care.programs import EventSpec, Intervention, Program
from bot.care.rules import RuleError, counting
from bot.care.timing import local_moment, shift_local_days, zone
from bot.clock import as_utc
from bot.store.db import insert_or_ignore
from bot.store.models import (
    Answer,
    DecisionPoint,
    Delivery,
    DeliveryStatus,
    InterventionRun,
    Participant,
)

log = logging.getLogger(__name__)

PENDING = (DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED)
UNSENT = (*PENDING, DeliveryStatus.SENDING)
OUTCOME_WINDOW = timedelta(hours=24)  # a decision's proximal outcome: the next answer within it
NARRATIVE_FIRST = timedelta(minutes=2)  # an intervention's first event waits for its narrative


# ---------------------------------------------------------------------------------------------
# Timing


def _clock_of(text: Any) -> time | None:
    try:
        hours, minutes = str(text).strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        return None


def attributes_of(participant: Participant, program: Program) -> dict[str, Any]:
    """The program's attribute defaults with the participant's own values over them."""
    return {**program.attribute_defaults, **dict(participant.attributes or {})}


def time_of_day(
    event: EventSpec, participant: Participant, program: Program, seed: str
) -> tuple[time, int]:
    """(local clock, minutes to add) for one occurrence: fixed, in a window, or anchored."""
    if event.window is not None:
        start, end = event.window
        span = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
        jitter = random.Random(f"{program.seed}:{participant.id}:{seed}").randrange(span + 1)
        return start, jitter
    if event.attribute is not None:
        own = _clock_of(attributes_of(participant, program).get(event.attribute))
        if own is None:
            log.warning("participant %s: attribute %s is not a time; using the program default",
                        participant.id, event.attribute)
        return own or event.at, event.offset_minutes
    return event.at, 0


def occurrence_moments(
    event: EventSpec,
    *,
    anchor_day: date,
    participant: Participant,
    program: Program,
    seed: str,
) -> list[datetime]:
    """UTC moments of each occurrence of `event`, `start_day` days after `anchor_day`."""
    tz = zone(participant.timezone)
    moments = []
    for index in range(event.times):
        day = anchor_day + timedelta(days=event.start_day + index * event.every_days)
        if event.window is not None:
            # A moment drawn from the real minutes between the window's local start and end,
            # so a window on a DST night stays inside its local hours.
            start, end = (local_moment(day, clock, tz) for clock in event.window)
            span = max(int((end - start).total_seconds() // 60), 0)
            draw = random.Random(
                f"{program.seed}:{participant.id}:{seed}#{index + 1}"
            ).randrange(span + 1)
            moments.append(start + timedelta(minutes=draw))
            continue
        clock, minutes = time_of_day(event, participant, program, f"{seed}#{index + 1}")
        moments.append(local_moment(day, clock, tz) + timedelta(minutes=minutes))
    return moments


def local_day(moment: datetime, participant: Participant) -> date:
    return as_utc(moment).astimezone(zone(participant.timezone)).date()


# ---------------------------------------------------------------------------------------------
# Planning


def _reminder(prompt: Delivery, event: EventSpec) -> Delivery | None:
    spec = event.assessment
    if spec is None or spec.reminder_after_hours is None:
        return None
    return Delivery(
        participant_id=prompt.participant_id,
        kind="reminder",
        event_key=prompt.event_key,
        run_id=prompt.run_id,
        due_at=prompt.due_at + timedelta(hours=spec.reminder_after_hours),
        context={"reminds": prompt.id, "text": spec.reminder_text,
                 "after_hours": spec.reminder_after_hours},
        program_version=prompt.program_version,
    )


def plan_occurrences(
    *,
    session: Session,
    participant: Participant,
    program: Program,
    events: tuple[EventSpec, ...],
    moment: datetime,
    scope: str = "",
    run: InterventionRun | None = None,
    existing: set[str] | None = None,
) -> list[Delivery]:
    """Add outbox rows for `events` (in order, `previous` chaining to the one before).

    Program-wide events (no run) keep their calendar: occurrences already past are dropped, and
    `existing` keys are not planned twice. An intervention's events shift as one block, by whole
    local days, to the first moment after `moment`, so their spacing and wall times are kept.
    """
    existing = existing or set()
    enrollment_day = local_day(participant.enrolled_at, participant)
    start_day = local_day(moment, participant)
    previous_day = start_day if run is not None else enrollment_day
    added: list[Delivery] = []
    for event in events:
        if event.alternative:
            continue
        anchor = {"start": start_day, "enrollment": enrollment_day}.get(
            event.anchor, previous_day
        )
        prefix = f"{scope}/{event.key}" if scope else event.key
        moments = occurrence_moments(
            event, anchor_day=anchor, participant=participant, program=program,
            seed=f"{prefix}@{run.id if run else 0}",
        )
        if run is not None and moments and moments[0] <= moment:
            # Whole local days, so each event keeps its wall time across a DST change.
            tz = zone(participant.timezone)
            shift = (local_day(moment, participant) - local_day(moments[0], participant)).days
            if shift_local_days(moments[0], shift, tz) <= moment:
                shift += 1
            moments = [shift_local_days(m, shift, tz) for m in moments]
        previous_day = local_day(moments[-1], participant)
        for index, due in enumerate(moments):
            key = f"{prefix}#{index + 1}"
            if run is None and (due <= moment or key in existing):
                continue
            prompt = Delivery(
                participant_id=participant.id or 0,
                kind="event",
                event_key=key,
                run_id=run.id if run else None,
                template=event.template,
                due_at=due,
                assessment=event.assessment.as_dict() if event.assessment else None,
                context={"occurrence": index + 1, "times": event.times},
                program_version=program.version,
            )
            session.add(prompt)
            added.append(prompt)
            if event.assessment and event.assessment.reminder_after_hours is not None:
                session.flush()
                if (reminder := _reminder(prompt, event)) is not None:
                    session.add(reminder)
    return added


def start_run(
    *,
    session: Session,
    participant: Participant,
    program: Program,
    intervention: Intervention,
    moment: datetime,
    reason: str,
) -> InterventionRun:
    """Begin a micro intervention: its run record and every planned event."""
    run = InterventionRun(
        participant_id=participant.id or 0,
        intervention=intervention.key,
        level=intervention.level,
        reason=reason[:300],
        started_at=moment,
        program_version=program.version,
    )
    session.add(run)
    session.flush()
    planned = plan_occurrences(
        session=session, participant=participant, program=program,
        events=intervention.events, moment=moment, scope=intervention.key, run=run,
    )
    ends = [moment]
    for delivery in planned:
        timeout = (delivery.assessment or {}).get("timeout_hours") or 0
        ends.append(delivery.due_at + timedelta(hours=float(timeout)))
    run.ends_at = max(ends)
    session.add(run)
    log.info("participant %s starts %s (%s)", participant.id, intervention.key, reason)
    return run


# ---------------------------------------------------------------------------------------------
# State for rules


def _numeric(values: list[Answer]) -> list[float]:
    return [a.value for a in values if not a.missing and a.value is not None]


def engagement(session: Session, participant_id: int, moment: datetime) -> dict[str, Any]:
    """unanswered_in_a_row and the 7-day response_rate, from the latest prompts sent."""
    prompts = session.exec(
        select(Delivery.id, Delivery.sent_at)
        .where(
            Delivery.participant_id == participant_id,
            col(Delivery.assessment).is_not(None),
            col(Delivery.sent_at).is_not(None),
            Delivery.sent_at <= moment,
        )
        .order_by(col(Delivery.sent_at).desc())
        .limit(40)
    ).all()
    answered = set(
        session.exec(
            select(Answer.delivery_id).where(
                Answer.participant_id == participant_id,
                col(Answer.delivery_id).in_([p.id for p in prompts]),
                col(Answer.missing).is_(False),
            )
        )
    ) if prompts else set()
    in_a_row = 0
    for prompt in prompts:
        if prompt.id in answered:
            break
        in_a_row += 1
    week = [p for p in prompts if as_utc(p.sent_at) >= moment - timedelta(days=7)]
    rate = sum(1 for p in week if p.id in answered) / len(week) if week else 1.0
    return {"unanswered_in_a_row": in_a_row, "response_rate": round(rate, 3)}


def state_of(session: Session, participant_id: int, program: Program) -> dict[str, Any]:
    """The latest answer to each state assessment, by key (None when never answered)."""
    state: dict[str, Any] = {}
    if program.hub is not None and program.hub.state is not None:
        state[program.hub.state.key] = None
    rows = session.exec(
        select(Answer, Delivery.assessment)
        .join(Delivery, col(Delivery.id) == col(Answer.delivery_id))
        .where(
            Answer.participant_id == participant_id,
            Delivery.kind == "state",
            col(Answer.missing).is_(False),
        )
        .order_by(col(Answer.answered_at), col(Answer.id))
    ).all()
    for answer, spec in rows:
        key = (spec or {}).get("state_key")
        if key:
            state[key] = answer.value if answer.value is not None else answer.label
    return state


def outcomes_of(session: Session, participant_id: int) -> dict[str, str]:
    runs = session.exec(
        select(InterventionRun)
        .where(InterventionRun.participant_id == participant_id,
               col(InterventionRun.outcome).is_not(None))
        .order_by(col(InterventionRun.ended_at), col(InterventionRun.id))
    ).all()
    return {run.intervention: run.outcome or "" for run in runs}


def run_tally(session: Session, run: InterventionRun | None) -> dict[str, Any]:
    """A run's answers (numeric, oldest first), prompts asked, answered and missing."""
    if run is None:
        return {**counting([]), "asked": 0, "answered": 0, "missing": 0}
    asked = session.exec(
        select(func.count(col(Delivery.id))).where(
            Delivery.run_id == run.id,
            col(Delivery.assessment).is_not(None),
            col(Delivery.sent_at).is_not(None),
        )
    ).one()
    answers = session.exec(
        select(Answer)
        .join(Delivery, col(Delivery.id) == col(Answer.delivery_id))
        .where(Delivery.run_id == run.id)
        .order_by(col(Answer.answered_at), col(Answer.id))
    ).all()
    return {
        **counting(_numeric(list(answers))),
        "asked": asked,
        "answered": sum(1 for a in answers if not a.missing),
        "missing": sum(1 for a in answers if a.missing),
    }


def rule_context(
    *,
    session: Session,
    participant: Participant,
    program: Program,
    run: InterventionRun | None,
    moment: datetime,
    occurrence: int = 0,
    times: int = 0,
) -> dict[str, Any]:
    """Every name a rule can use (narratives/README.md, "Rule expressions")."""
    assert participant.id is not None
    local = as_utc(moment).astimezone(zone(participant.timezone))
    enrolled = local_day(participant.enrolled_at, participant)
    return {
        **run_tally(session, run),
        **engagement(session, participant.id, moment),
        "state": state_of(session, participant.id, program),
        "attributes": attributes_of(participant, program),
        "outcomes": outcomes_of(session, participant.id),
        "day": (local.date() - enrolled).days,
        "run_day": (local.date() - local_day(run.started_at, participant)).days if run else 0,
        "occurrence": occurrence,
        "times": times,
        "local_hour": local.hour,
        "weekday": local.weekday(),
    }


# ---------------------------------------------------------------------------------------------
# Decisions at send time


@dataclass
class Decision:
    action: str  # send, cancel, defer
    reason: str = ""
    until: datetime | None = None
    text: str | None = None  # send this text instead of rendering a template
    ended_run: bool = False  # the intervention ended: the hub should look at the participant


SEND = Decision("send")


def _draw(program: Program, participant: Participant, decision: str) -> float:
    """The participant's reproducible draw in [0, 1) for one decision point."""
    return random.Random(f"{program.seed}:{participant.id}:{decision}").random()


def _log_decision(
    session: Session, *, delivery: Delivery, program: Program, decision: str, available: bool,
    probability: float | None, choice: str, moment: datetime,
) -> None:
    session.add(
        DecisionPoint(
            participant_id=delivery.participant_id,
            run_id=delivery.run_id,
            delivery_id=delivery.id or 0,
            decision=decision[:120],
            available=available,
            probability=probability,
            choice=choice[:80],
            program_version=program.version,
            decided_at=moment,
        )
    )


def _re_engagements_this_week(
    session: Session, participant_id: int, moment: datetime
) -> int:
    return session.exec(
        select(func.count(col(DecisionPoint.id))).where(
            DecisionPoint.participant_id == participant_id,
            col(DecisionPoint.choice).startswith("re-engage:"),
            DecisionPoint.decided_at >= moment - timedelta(days=7),
        )
    ).one()


def _use(delivery: Delivery, event: EventSpec) -> None:
    """Send `event` (an alternative) in place of the planned one."""
    delivery.template = event.template
    delivery.assessment = event.assessment.as_dict() if event.assessment else None
    delivery.context = {**(delivery.context or {}), "sent_event": event.key}


def decide(
    *,
    session: Session,
    participant: Participant,
    program: Program,
    delivery: Delivery,
    moment: datetime,
) -> Decision:
    """Apply the program's rules to a delivery about to be sent (its row is locked)."""
    if delivery.kind == "reminder":
        return _decide_reminder(session, delivery)
    run = session.get(InterventionRun, delivery.run_id) if delivery.run_id else None
    if run is not None and run.ended_at is not None:
        return Decision("cancel", f"its intervention ended ({run.end_reason})")
    if delivery.kind == "narrative" or delivery.kind != "event" or not delivery.event_key:
        return SEND
    intervention, event = program.find_event(delivery.event_key)
    if event is None:
        return Decision("cancel", f"event {delivery.event_key} is not in program version "
                                  f"{program.version}")
    if run is not None and _narrative_pending(session, run):
        return Decision("defer", "its narrative goes first", until=moment + NARRATIVE_FIRST)
    needs_rules = event.is_decision_point or (
        intervention is not None
        and (intervention.end_early is not None
             or (intervention.re_engage is not None and event.assessment is not None))
    )
    if not needs_rules:
        return SEND
    context = delivery.context or {}
    record_missing(session=session, participant_id=participant.id or 0, moment=moment)
    state = rule_context(
        session=session, participant=participant, program=program, run=run, moment=moment,
        occurrence=int(context.get("occurrence", 0)), times=int(context.get("times", 0)),
    )
    decision_key = f"{delivery.event_key}@{delivery.run_id or 0}"

    def holds(rule: Any) -> bool:
        try:
            return rule.holds(state)
        except RuleError as exc:  # a typo never sends a wrong message: the rule does not hold
            log.error("participant %s: %s", participant.id, exc)
            return False

    if (
        intervention is not None
        and run is not None
        and intervention.end_early is not None
        and state["asked"] > 0  # judged on its own questions, never before the first
        and holds(intervention.end_early)
    ):
        close_run(session=session, participant=participant, program=program, run=run,
                  moment=moment, end_reason="ended early")
        return Decision("cancel", "its intervention ended early", ended_run=True)
    chosen: EventSpec | None = event
    if (
        intervention is not None
        and intervention.re_engage is not None
        and event.assessment is not None
        and state["unanswered_in_a_row"] >= intervention.re_engage.after_unanswered
    ):
        lighter = intervention.event(intervention.re_engage.event)
        if (
            lighter is not None
            and _re_engagements_this_week(session, participant.id or 0, moment)
            < intervention.re_engage.per_week
        ):
            _use(delivery, lighter)
            _log_decision(session, delivery=delivery, program=program, decision=decision_key,
                          available=True, probability=None, choice=f"re-engage:{lighter.key}",
                          moment=moment)
            return SEND
        _log_decision(session, delivery=delivery, program=program, decision=decision_key,
                      available=False, probability=None, choice="skip", moment=moment)
        return Decision("cancel", f"backing off after {state['unanswered_in_a_row']} "
                                  f"unanswered questions")
    available = True
    if event.when is not None and not holds(event.when):
        chosen = intervention.event(event.otherwise) if (
            intervention is not None and event.otherwise
        ) else next((e for e in program.events if e.key == event.otherwise), None)
        available = chosen is not None
    probability = None
    if available and event.randomize:
        draw, total = _draw(program, participant, decision_key), 0.0
        choice = event.randomize[-1][0]
        for option, p in event.randomize:
            total += p
            if draw < total:
                choice = option
                break
        probability = dict(event.randomize)[choice]
        chosen = None if choice == "skip" else (
            intervention.event(choice) if intervention else
            next((e for e in program.events if e.key == choice), None)
        )
    _log_decision(session, delivery=delivery, program=program, decision=decision_key,
                  available=available, probability=probability,
                  choice=chosen.key if chosen is not None else "skip", moment=moment)
    if chosen is None:
        why = "randomized to skip" if available else "its rule did not hold"
        return Decision("cancel", f"not sent: {why}")
    if chosen is not event:
        _use(delivery, chosen)
    return SEND


def _narrative_pending(session: Session, run: InterventionRun) -> bool:
    return session.exec(
        select(Delivery.id).where(
            Delivery.run_id == run.id,
            Delivery.kind == "narrative",
            col(Delivery.status).in_(UNSENT),
        )
    ).first() is not None


def _decide_reminder(session: Session, reminder: Delivery) -> Decision:
    prompt = session.get(Delivery, int((reminder.context or {}).get("reminds") or 0))
    text = str((reminder.context or {}).get("text") or "")
    if prompt is None or prompt.status == DeliveryStatus.CANCELLED or not text:
        return Decision("cancel", "its question was not sent")
    if prompt.sent_at is None:
        if prompt.status in UNSENT:
            after = float((reminder.context or {}).get("after_hours") or 1)
            return Decision("defer", "its question is not sent yet",
                            until=max(prompt.due_at, reminder.due_at) + timedelta(hours=after))
        return Decision("cancel", "its question was not delivered")
    answered = session.exec(
        select(Answer.id).where(Answer.delivery_id == prompt.id)
    ).first()
    if answered is not None:
        return Decision("cancel", "already answered")
    after = timedelta(hours=float((reminder.context or {}).get("after_hours") or 1))
    if as_utc(prompt.sent_at) + after > as_utc(reminder.due_at):
        return Decision("defer", "its question went out late",
                        until=as_utc(prompt.sent_at) + after)
    return Decision("send", text=text)


# ---------------------------------------------------------------------------------------------
# Ending an intervention


def add_answer(session: Session, answer: Answer) -> bool:
    """Insert `answer` unless its question has one already (then nothing changes); True if it
    went in. One statement, safe against a concurrent reply or timeout."""
    table = Answer.__table__  # type: ignore[attr-defined]
    values = {c.name: getattr(answer, c.name) for c in table.columns if c.name != "id"}
    answer.id = session.exec(
        insert_or_ignore(session, table).values(**values).returning(table.c.id)
    ).scalar()
    return answer.id is not None


def record_missing(*, session: Session, participant_id: int, moment: datetime,
                   run: InterventionRun | None = None, force: bool = False) -> int:
    """Record a missing answer for each sent question whose timeout passed with no reply."""
    query = select(Delivery).where(
        Delivery.participant_id == participant_id,
        col(Delivery.assessment).is_not(None),
        col(Delivery.sent_at).is_not(None),
        ~select(Answer.id).where(Answer.delivery_id == Delivery.id).exists(),
    )
    if run is not None:
        query = query.where(Delivery.run_id == run.id)
    recorded = 0
    for prompt in session.exec(query).all():
        timeout = timedelta(hours=float((prompt.assessment or {}).get("timeout_hours") or 36))
        if force or as_utc(prompt.sent_at) + timeout <= moment:  # type: ignore[arg-type]
            # Conditional: a real reply committed meanwhile keeps its place (one question, one
            # answer, by the unique constraint).
            recorded += add_answer(session, Answer(
                participant_id=participant_id, delivery_id=prompt.id or 0, missing=True,
                answered_at=moment,
            ))
    if recorded:
        session.flush()
        settle_decisions(session=session, participant_id=participant_id, moment=moment)
    return recorded


def close_run(
    *,
    session: Session,
    participant: Participant,
    program: Program,
    run: InterventionRun,
    moment: datetime,
    end_reason: str,
) -> str | None:
    """End a run: questions still open count as missing, the outcome rule decides."""
    record_missing(session=session, participant_id=participant.id or 0, moment=moment, run=run,
                   force=True)
    session.exec(
        update(Delivery)
        .where(col(Delivery.run_id) == run.id, col(Delivery.status) == DeliveryStatus.SCHEDULED,
               col(Delivery.kind) != "narrative")
        .values(status=DeliveryStatus.CANCELLED, final_at=moment,
                error_message=f"its intervention ended ({end_reason})")
    )
    intervention = program.intervention(run.intervention)
    state = rule_context(session=session, participant=participant, program=program, run=run,
                         moment=moment)
    # Not judged when it asked nothing (stopped before its first question): no outcome at all
    # is fairer than "disengaged" for someone who was never asked.
    outcome: str | None = "not achieved" if state["asked"] else None
    if intervention is not None and state["asked"]:
        for name, rule in intervention.outcome:
            try:
                if rule.holds(state):
                    outcome = name
                    break
            except RuleError as exc:
                log.error("participant %s: %s", participant.id, exc)
    run.outcome, run.ended_at, run.end_reason = outcome, moment, end_reason
    session.add(run)
    log.info("participant %s ended %s: %s (%s)", participant.id, run.intervention, outcome,
             end_reason)
    return outcome


def run_is_over(session: Session, run: InterventionRun, moment: datetime) -> bool:
    """Nothing of the run left to send, and each question answered or past its timeout."""
    waiting = session.exec(
        select(Delivery.id).where(
            Delivery.run_id == run.id, col(Delivery.status).in_(UNSENT),
            Delivery.kind != "reminder",
        )
    ).first()
    if waiting is not None:
        return False
    tally = run_tally(session, run)
    return tally["answered"] + tally["missing"] >= tally["asked"] or (
        run.ends_at is not None and as_utc(run.ends_at) <= moment
    )


# ---------------------------------------------------------------------------------------------
# Proximal outcomes


def settle_decisions(*, session: Session, participant_id: int, moment: datetime) -> None:
    """Fill in the proximal outcome of decision points: the first answer within 24 hours, or
    missing once 24 hours passed without one."""
    open_points = session.exec(
        select(DecisionPoint).where(
            DecisionPoint.participant_id == participant_id,
            col(DecisionPoint.outcome_status).is_(None),
        )
    ).all()
    if not open_points:
        return
    earliest = min(as_utc(p.decided_at) for p in open_points)
    answers = session.exec(
        select(Answer).where(
            Answer.participant_id == participant_id,
            col(Answer.missing).is_(False),
            Answer.answered_at >= earliest,
        ).order_by(col(Answer.answered_at), col(Answer.id))
    ).all()
    for point in open_points:
        decided = as_utc(point.decided_at)
        first = next((a for a in answers
                      if decided <= as_utc(a.answered_at) <= decided + OUTCOME_WINDOW), None)
        if first is not None:
            point.outcome, point.outcome_status = first.value, "answered"
            point.outcome_at = first.answered_at
        elif decided + OUTCOME_WINDOW <= moment:
            point.outcome_status, point.outcome_at = "missing", moment
        else:
            continue
        session.add(point)


# ---------------------------------------------------------------------------------------------
# What templates see of the process


def run_summary(session: Session, run: InterventionRun, program: Program) -> dict[str, Any]:
    """One micro intervention as templates see it (history.interventions, previous)."""
    intervention = program.intervention(run.intervention)
    level = program.level(run.level)
    tally = run_tally(session, run)
    return {
        "key": run.intervention,
        "title": intervention.title if intervention else run.intervention,
        "level": level.title if level else run.level,
        "started": run.started_at,
        "ended": run.ended_at,
        "outcome": run.outcome,
        "asked": tally["asked"],
        "answered": tally["answered"],
        "missing": tally["missing"],
    }


def history_of(session: Session, participant_id: int, program: Program) -> list[dict[str, Any]]:
    if not program.interventions:
        return []
    runs = session.exec(
        select(InterventionRun)
        .where(InterventionRun.participant_id == participant_id)
        .order_by(col(InterventionRun.started_at), col(InterventionRun.id))
    ).all()
    return [run_summary(session, run, program) for run in runs]


def intervention_place(
    program: Program, intervention: Intervention, reason: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The narrative's `current` (the intervention, its rationale and its place in the whole)
    and `next` (the following level in priority order, or None after the last)."""
    levels = list(program.levels)
    index = next((i for i, lv in enumerate(levels) if lv.key == intervention.level), 0)
    level = levels[index] if levels else None
    current = {
        "key": intervention.key,
        "title": intervention.title,
        "rationale": intervention.rationale,
        "reason": reason,
        "level": {
            "key": level.key if level else "",
            "title": level.title if level else "",
            "rationale": level.rationale if level else "",
            "position": index + 1,
            "count": len(levels),
        },
        "events": [
            {"key": e.key, "goal": e.goal, "times": e.times} for e in intervention.planned
        ],
    }
    after = levels[index + 1] if index + 1 < len(levels) else None
    following = (
        {"key": after.key, "title": after.title, "rationale": after.rationale} if after else None
    )
    return current, following


def narrative_context(
    session: Session, program: Program, delivery: Delivery
) -> dict[str, Any]:
    """`previous`, `current`, `next` and `reason` for the hub's narrative."""
    run = session.get(InterventionRun, delivery.run_id) if delivery.run_id else None
    context = delivery.context or {}
    previous_id = context.get("previous_run")
    previous = session.get(InterventionRun, int(previous_id)) if previous_id else None
    current, following = None, None
    if run is not None and (intervention := program.intervention(run.intervention)):
        current, following = intervention_place(program, intervention, run.reason)
    return {
        "previous": run_summary(session, previous, program) if previous else None,
        "current": current,
        "next": following,
        "reason": context.get("reason", "start"),
    }
