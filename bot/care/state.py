"""What a rule sees of a participant (narratives/README.md, "Rule expressions"): answers,
engagement, state assessments, outcomes of earlier interventions, the local day and hour."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.care.planning import attributes_of, local_day
from bot.care.programs import Program
from bot.care.rules import counting
from bot.care.timing import zone
from bot.clock import as_utc
from bot.store.models import (
    Answer,
    Delivery,
    DeliveryStatus,
    InterventionRun,
    Participant,
)

log = logging.getLogger(__name__)


PENDING = (DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED)


UNSENT = (*PENDING, DeliveryStatus.SENDING)


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

