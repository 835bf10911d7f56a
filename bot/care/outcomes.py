"""How a micro intervention ends and what it achieved: answers and missing answers, the
outcome rule when a run closes, and the proximal outcome of each decision point."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select, update

from bot.care.programs import Program
from bot.care.rules import RuleError
from bot.care.state import UNSENT, rule_context, run_tally
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


OUTCOME_WINDOW = timedelta(hours=24)  # a decision's proximal outcome: the next answer within it


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

