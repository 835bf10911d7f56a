"""What a rule sees of a participant (narratives/README.md, "Rule expressions"): answers,
engagement, state assessments, outcomes of earlier interventions, the local day and hour."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    String,
    and_,
    bindparam,
    cast,
    func,
    literal,
    null,
    or_,
    union_all,
)
from sqlalchemy.sql import Select
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
    UTCDateTime,
)

log = logging.getLogger(__name__)


PENDING = (DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED)


UNSENT = (*PENDING, DeliveryStatus.SENDING)


# The statements below are built once, with bound parameters: a rule's state is read for
# every decision point and hub evaluation, and building a statement costs as much as running it.
_PARTICIPANT = bindparam("participant")
_ASKED = and_(col(Delivery.assessment).is_not(None), col(Delivery.sent_at).is_not(None))

# The latest 40 prompts sent, each with whether a real answer came back.
_LATEST_PROMPTS = (
    select(
        col(Delivery.sent_at).label("sent_at"), col(Answer.id).is_not(None).label("answered"),
        func.row_number().over(
            order_by=(col(Delivery.sent_at).desc(), col(Delivery.id).desc())
        ).label("n"),
    )
    .select_from(Delivery)
    .outerjoin(Answer, and_(
        col(Answer.delivery_id) == col(Delivery.id),
        col(Answer.participant_id) == _PARTICIPANT,
        col(Answer.missing).is_(False),
    ))
    .where(col(Delivery.participant_id) == _PARTICIPANT, _ASKED,
           col(Delivery.sent_at) <= bindparam("moment"))
    .order_by(col(Delivery.sent_at).desc(), col(Delivery.id).desc())
    .limit(40)
)

# The latest answer to each state assessment: the database picks it. Read from the
# participant's state questions (ix_delivery_participant_kind), each answer found by its
# question, not from all their answers (an answer is always to a question of their own).
_STATE_KEY = col(Delivery.assessment)["state_key"].as_string()
_RANKED_STATE = (
    select(
        _STATE_KEY.label("key"), Answer.value, Answer.label, Answer.answered_at, Answer.id,
        func.row_number().over(
            partition_by=_STATE_KEY,
            order_by=(col(Answer.answered_at).desc(), col(Answer.id).desc()),
        ).label("rank"),
    )
    .select_from(Delivery)
    .join(Answer, col(Answer.delivery_id) == col(Delivery.id))
    .where(col(Delivery.participant_id) == _PARTICIPANT, Delivery.kind == "state",
           col(Answer.participant_id) == _PARTICIPANT, col(Answer.missing).is_(False))
    .subquery()
)
_LATEST_STATE = (
    select(
        _RANKED_STATE.c.key, _RANKED_STATE.c.value, _RANKED_STATE.c.label,
        func.row_number().over(
            order_by=(_RANKED_STATE.c.answered_at, _RANKED_STATE.c.id)
        ).label("n"),
    )
    .where(_RANKED_STATE.c.rank == 1)
    .order_by(_RANKED_STATE.c.answered_at, _RANKED_STATE.c.id)
)

_OUTCOMES = (
    select(
        col(InterventionRun.intervention).label("intervention"),
        col(InterventionRun.outcome).label("outcome"),
        func.row_number().over(
            order_by=(col(InterventionRun.ended_at), col(InterventionRun.id))
        ).label("n"),
    )
    .where(col(InterventionRun.participant_id) == _PARTICIPANT,
           col(InterventionRun.outcome).is_not(None))
    .order_by(col(InterventionRun.ended_at), col(InterventionRun.id))
)

# A run's deliveries that asked something or were answered, each with its answer.
_RUN_ANSWERS = (
    select(
        _ASKED.label("asked"), col(Answer.id).label("answer"),
        col(Answer.missing).label("missing"), col(Answer.value).label("value"),
        func.row_number().over(order_by=(col(Answer.answered_at), col(Answer.id))).label("n"),
    )
    .select_from(Delivery)
    .outerjoin(Answer, col(Answer.delivery_id) == col(Delivery.id))
    .where(col(Delivery.run_id) == bindparam("run"), or_(_ASKED, col(Answer.id).is_not(None)))
    .order_by(col(Answer.answered_at), col(Answer.id))
)


def _engagement(prompts: list[tuple[datetime, bool]], moment: datetime) -> dict[str, Any]:
    in_a_row = 0
    for _, was_answered in prompts:
        if was_answered:
            break
        in_a_row += 1
    week = [bool(was) for sent, was in prompts if as_utc(sent) >= moment - timedelta(days=7)]
    rate = sum(week) / len(week) if week else 1.0
    return {"unanswered_in_a_row": in_a_row, "response_rate": round(rate, 3)}


def _state(rows: list[tuple[str | None, float | None, str | None]],
           program: Program) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if program.hub is not None and program.hub.state is not None:
        state[program.hub.state.key] = None
    for name, value, label in rows:
        if name:
            state[name] = value if value is not None else label
    return state


def _tally(rows: list[tuple[bool, int | None, bool | None, float | None]]) -> dict[str, Any]:
    answers = [(missing, value) for _, answer_id, missing, value in rows if answer_id is not None]
    return {
        **counting([value for missing, value in answers if not missing and value is not None]),
        "asked": sum(1 for was_asked, *_ in rows if was_asked),
        "answered": sum(1 for missing, _ in answers if not missing),
        "missing": sum(1 for missing, _ in answers if missing),
    }


NO_RUN = {**counting([]), "asked": 0, "answered": 0, "missing": 0}


def engagement(session: Session, participant_id: int, moment: datetime) -> dict[str, Any]:
    """unanswered_in_a_row and the 7-day response_rate, from the latest prompts sent."""
    prompts = session.exec(
        _LATEST_PROMPTS, params={"participant": participant_id, "moment": moment}
    ).all()
    return _engagement([(sent, bool(was)) for sent, was, _ in prompts], moment)


def state_of(session: Session, participant_id: int, program: Program) -> dict[str, Any]:
    """The latest answer to each state assessment, by key (None when never answered)."""
    rows = session.exec(_LATEST_STATE, params={"participant": participant_id}).all()
    return _state([(name, value, label) for name, value, label, _ in rows], program)


def outcomes_of(session: Session, participant_id: int) -> dict[str, str]:
    """The outcome of each intervention, from its latest run that has one."""
    runs = session.exec(_OUTCOMES, params={"participant": participant_id}).all()
    return {intervention: outcome or "" for intervention, outcome, _ in runs}


def run_tally(session: Session, run: InterventionRun | None) -> dict[str, Any]:
    """A run's answers (numeric, oldest first), prompts asked, answered and missing."""
    if run is None:
        return dict(NO_RUN)
    rows = session.exec(_RUN_ANSWERS, params={"run": run.id}).all()
    return _tally([(asked, answer, missing, value) for asked, answer, missing, value, _ in rows])


# The four reads above in one round trip, for a rule's whole state: each as a part of one
# UNION ALL, its rows numbered in its own order, in columns the four share.
_SHARED = (
    ("at", UTCDateTime()), ("yes", Boolean()), ("also", Boolean()), ("ident", Integer()),
    ("number", Float()), ("name", String()), ("label", String()),
)


def _part(place: int, query: Select, **given: str) -> Select:
    rows = query.subquery()
    return select(
        literal(place).label("part"), rows.c.n,
        *[(rows.c[given[name]] if name in given else cast(null(), kind)).label(name)
          for name, kind in _SHARED],
    )


_RULE_STATE = union_all(
    _part(1, _LATEST_PROMPTS, at="sent_at", yes="answered"),
    _part(2, _LATEST_STATE, name="key", number="value", label="label"),
    _part(3, _OUTCOMES, name="intervention", label="outcome"),
    _part(4, _RUN_ANSWERS, yes="asked", ident="answer", also="missing", number="value"),
).order_by("part", "n")


def rule_state(
    session: Session, participant_id: int, program: Program, run: InterventionRun | None,
    moment: datetime,
) -> dict[str, Any]:
    """run_tally, engagement, state_of and outcomes_of, read in one statement."""
    parts: dict[int, list[Any]] = {1: [], 2: [], 3: [], 4: []}
    for row in session.exec(_RULE_STATE, params={
        "participant": participant_id, "moment": moment, "run": run.id if run else None,
    }).all():
        parts[row.part].append(row)
    return {
        **(_tally([(bool(r.yes), r.ident, r.also, r.number) for r in parts[4]])
           if run is not None else dict(NO_RUN)),
        **_engagement([(r.at, bool(r.yes)) for r in parts[1]], moment),
        "state": _state([(r.name, r.number, r.label) for r in parts[2]], program),
        "outcomes": {r.name: r.label or "" for r in parts[3]},
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
        **rule_state(session, participant.id, program, run, moment),
        "attributes": attributes_of(participant, program),
        "day": (local.date() - enrolled).days,
        "run_day": (local.date() - local_day(run.started_at, participant)).days if run else 0,
        "occurrence": occurrence,
        "times": times,
        "local_hour": local.hour,
        "weekday": local.weekday(),
    }

