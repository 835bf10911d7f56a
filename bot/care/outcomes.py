"""How a micro intervention ends and what it achieved: answers and missing answers, the
outcome rule when a run closes, and the proximal outcome of each decision point."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, func
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


# Statements built once, with bound parameters (they run for every decision and evaluation).
_PARTICIPANT = bindparam("participant")
_UNANSWERED = (
    select(Delivery.id, Delivery.sent_at, Delivery.assessment)
    .where(
        col(Delivery.participant_id) == _PARTICIPANT,
        col(Delivery.assessment).is_not(None),
        col(Delivery.sent_at).is_not(None),
        # Their answers only (theirs anyway): never a hash of the whole answer table.
        ~select(Answer.id).where(col(Answer.delivery_id) == col(Delivery.id),
                                 col(Answer.participant_id) == _PARTICIPANT).exists(),
    )
    .order_by(col(Delivery.id))
)
_UNANSWERED_IN_RUN = _UNANSWERED.where(col(Delivery.run_id) == bindparam("run"))


def record_missing(*, session: Session, participant_id: int, moment: datetime,
                   run: InterventionRun | None = None, force: bool = False) -> int:
    """Record a missing answer for each sent question whose timeout passed with no reply
    (oldest question first)."""
    if run is None:
        prompts = session.exec(_UNANSWERED, params={"participant": participant_id})
    else:
        prompts = session.exec(
            _UNANSWERED_IN_RUN, params={"participant": participant_id, "run": run.id}
        )
    recorded = 0
    for prompt_id, sent_at, assessment in prompts.all():
        timeout = timedelta(hours=float((assessment or {}).get("timeout_hours") or 36))
        if force or as_utc(sent_at) + timeout <= moment:
            # Conditional: a real reply committed meanwhile keeps its place (one question, one
            # answer, by the unique constraint).
            recorded += add_answer(session, Answer(
                participant_id=participant_id, delivery_id=prompt_id or 0, missing=True,
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


_WAITING = select(Delivery.id).where(
    col(Delivery.run_id) == bindparam("run"), col(Delivery.status).in_(UNSENT),
    Delivery.kind != "reminder",
).limit(1)


def run_is_over(session: Session, run: InterventionRun, moment: datetime) -> bool:
    """Nothing of the run left to send, and each question answered or past its timeout."""
    waiting = session.exec(_WAITING, params={"run": run.id}).first()
    if waiting is not None:
        return False
    tally = run_tally(session, run)
    return tally["answered"] + tally["missing"] >= tally["asked"] or (
        run.ends_at is not None and as_utc(run.ends_at) <= moment
    )


_OPEN_POINTS = select(DecisionPoint).where(
    col(DecisionPoint.participant_id) == _PARTICIPANT,
    col(DecisionPoint.outcome_status).is_(None),
)
_ANSWERS_SINCE = (
    select(Answer.value, Answer.answered_at)
    .where(col(Answer.participant_id) == _PARTICIPANT, col(Answer.missing).is_(False),
           col(Answer.answered_at) >= bindparam("since"))
    .order_by(col(Answer.answered_at), col(Answer.id))
)


def settle_decisions(*, session: Session, participant_id: int, moment: datetime) -> None:
    """Fill in the proximal outcome of decision points: the first answer within 24 hours, or
    missing once 24 hours passed without one."""
    open_points = session.exec(_OPEN_POINTS, params={"participant": participant_id}).all()
    if not open_points:
        return
    earliest = min(as_utc(p.decided_at) for p in open_points)
    answers = session.exec(
        _ANSWERS_SINCE, params={"participant": participant_id, "since": earliest}
    ).all()
    for point in open_points:
        decided = as_utc(point.decided_at)
        first = next(((value, at) for value, at in answers
                      if decided <= as_utc(at) <= decided + OUTCOME_WINDOW), None)
        if first is not None:
            point.outcome, point.outcome_status = first[0], "answered"
            point.outcome_at = first[1]
        elif decided + OUTCOME_WINDOW <= moment:
            point.outcome_status, point.outcome_at = "missing", moment
        else:
            continue
        session.add(point)


def _summary(
    program: Program, key: str, level_key: str, started: datetime, ended: datetime | None,
    outcome: str | None, asked: int, answered: int, missing: int,
) -> dict[str, Any]:
    intervention = program.intervention(key)
    level = program.level(level_key)
    return {
        "key": key,
        "title": intervention.title if intervention else key,
        "level": level.title if level else level_key,
        "started": started,
        "ended": ended,
        "outcome": outcome,
        "asked": asked,
        "answered": answered,
        "missing": missing,
    }


def run_summary(session: Session, run: InterventionRun, program: Program) -> dict[str, Any]:
    """One micro intervention as templates see it (history.interventions, previous)."""
    tally = run_tally(session, run)
    return _summary(program, run.intervention, run.level, run.started_at, run.ended_at,
                    run.outcome, tally["asked"], tally["answered"], tally["missing"])


def _history_statement() -> Any:
    """Every run of a participant, oldest first, with its questions counted, in one query."""
    run = InterventionRun.__table__  # type: ignore[attr-defined]
    delivery = Delivery.__table__  # type: ignore[attr-defined]
    answer = Answer.__table__  # type: ignore[attr-defined]
    participant = bindparam("participant")

    def count(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    # The participant's deliveries of any run, each with its answer: counted per run.
    tallies = (
        select(
            delivery.c.run_id,
            count(and_(delivery.c.assessment.is_not(None), delivery.c.sent_at.is_not(None)))
            .label("asked"),
            count(answer.c.missing.is_(False)).label("answered"),
            count(answer.c.missing.is_(True)).label("missing"),
        )
        .select_from(delivery.outerjoin(answer, and_(
            answer.c.delivery_id == delivery.c.id,
            answer.c.participant_id == participant,  # theirs anyway: found by its index
        )))
        .where(delivery.c.participant_id == participant, delivery.c.run_id.is_not(None))
        .group_by(delivery.c.run_id)
        .subquery()
    )
    return (
        select(run.c.intervention, run.c.level, run.c.started_at, run.c.ended_at,
               run.c.outcome, func.coalesce(tallies.c.asked, 0),
               func.coalesce(tallies.c.answered, 0), func.coalesce(tallies.c.missing, 0))
        .select_from(run.outerjoin(tallies, tallies.c.run_id == run.c.id))
        .where(run.c.participant_id == participant)
        .order_by(run.c.started_at, run.c.id)
    )


_HISTORY = _history_statement()


def history_of(session: Session, participant_id: int, program: Program) -> list[dict[str, Any]]:
    """Every micro intervention of the participant, oldest first, as `run_summary` has each,
    in one query however many there were."""
    if not program.interventions:
        return []
    rows = session.exec(_HISTORY, params={"participant": participant_id}).all()
    return [_summary(program, *row) for row in rows]
