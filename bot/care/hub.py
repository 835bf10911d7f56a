"""The hub: recognise a participant's state, pick the next micro intervention, send the narrative.

It runs when a micro intervention ends, at the program's periodic evaluation, after a state
assessment is answered, and when the participant texts CHECKIN. The choice follows the model:
priority levels first (the first level whose need holds), then history (nothing achieved is
given again; one just not achieved is not repeated at once, an alternative at its level goes
first).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select, update

from bot.care.outcomes import close_run, record_missing, run_is_over, settle_decisions
from bot.care.planning import local_day, start_run
from bot.care.programs import (
    UNAVAILABLE_RETRY,
    Intervention,
    Level,
    Program,
    unavailable_alert,
    unavailable_reason,
)
from bot.care.rules import RuleError
from bot.care.state import rule_context
from bot.care.timing import local_moment, zone
from bot.clock import as_utc, now
from bot.store.db import session_scope
from bot.store.models import Delivery, InterventionRun, Participant

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # a claimed evaluation is retried after this if its job was lost
STATE_WAIT = timedelta(hours=3)  # how long the hub waits for a state assessment's answer


def _periodic_after(
    participant: Participant, program: Program, moment: datetime
) -> datetime | None:
    """The first periodic evaluation moment after `moment`; None when there is no other."""
    hub = program.hub
    assert hub is not None
    tz = zone(participant.timezone)
    first_day = local_day(participant.enrolled_at, participant) + timedelta(days=hub.first_day)
    every = hub.evaluate_every_days
    first = local_moment(first_day, hub.at, tz)
    if first > moment or not every:
        return first if first > moment else None
    days = (local_day(moment, participant) - first_day).days
    step = days // every * every
    candidate = local_moment(first_day + timedelta(days=step), hub.at, tz)
    while candidate <= moment:
        step += every
        candidate = local_moment(first_day + timedelta(days=step), hub.at, tz)
    return candidate


_OPEN_RUN = (  # built once: every evaluation asks
    select(InterventionRun)
    .where(col(InterventionRun.participant_id) == bindparam("participant"),
           col(InterventionRun.ended_at).is_(None))
    .order_by(col(InterventionRun.id).desc())
    .limit(1)
)
_PARTICIPANT = select(Participant).where(col(Participant.id) == bindparam("participant"))
_LOCKED_PARTICIPANT = _PARTICIPANT.with_for_update()


def open_run(session: Session, participant_id: int) -> InterventionRun | None:
    return session.exec(_OPEN_RUN, params={"participant": participant_id}).first()


def schedule(
    *, participant: Participant, program: Program, moment: datetime,
    run: InterventionRun | None,
) -> None:
    """Set when the hub looks at the participant next: their run's end or the periodic one."""
    if program.hub is None or not program.levels:
        participant.next_evaluation_at, participant.evaluation_reason = None, None
        return
    options = []
    if (periodic := _periodic_after(participant, program, moment)) is not None:
        options.append((periodic, "periodic"))
    if run is not None and run.ends_at is not None:
        options.append((max(as_utc(run.ends_at), moment), "ended"))
    when, reason = min(options) if options else (None, None)
    participant.next_evaluation_at, participant.evaluation_reason = when, reason


def request(participant: Participant, reason: str, moment: datetime | None = None) -> None:
    """Ask for an evaluation as soon as possible (the dispatcher picks it up)."""
    participant.next_evaluation_at = moment or now()
    participant.evaluation_reason = reason


def _in_need(level: Level, state: dict[str, Any], participant_id: int) -> bool:
    if level.need is None:
        return True
    try:
        return level.need.holds(state)
    except RuleError as exc:
        log.error("participant %s: %s", participant_id, exc)
        return False


def choose(
    *, session: Session, participant: Participant, program: Program, moment: datetime,
    previous: InterventionRun | None, reason: str,
) -> tuple[Intervention, str] | None:
    """The next micro intervention and why, or None when nothing fits now."""
    assert participant.id is not None
    state = rule_context(session=session, participant=participant, program=program, run=None,
                            moment=moment)
    tried = session.exec(
        select(InterventionRun.intervention, InterventionRun.outcome)
        .where(InterventionRun.participant_id == participant.id)
    ).all()
    achieved = {key for key, outcome in tried if outcome == "achieved"}
    attempts: dict[str, int] = {}
    for key, _ in tried:
        attempts[key] = attempts.get(key, 0) + 1
    just_failed = (
        previous.intervention
        if previous is not None and previous.outcome != "achieved" and reason != "periodic"
        else None
    )
    for position, level in enumerate(program.levels, start=1):
        if not _in_need(level, state, participant.id):
            continue
        candidates = [
            key for key in level.interventions
            if key not in achieved and key != just_failed and program.intervention(key)
        ]
        if not candidates:
            continue
        key = min(candidates, key=lambda k: (attempts.get(k, 0), level.interventions.index(k)))
        intervention = program.intervention(key)
        assert intervention is not None
        why = (f"level {position} of {len(program.levels)} ({level.title})"
               + (" is in need" if level.need is not None else " comes first")
               + (f"; {just_failed} not repeated at once" if just_failed else ""))
        return intervention, why
    return None


def _ask_state(session: Session, participant: Participant, program: Program,
               moment: datetime) -> None:
    hub = program.hub
    assert hub is not None and hub.state is not None
    session.add(Delivery(
        participant_id=participant.id or 0, kind="state", event_key=f"state/{hub.state.key}",
        template=hub.state.template, due_at=moment,
        assessment={**hub.state.assessment.as_dict(), "state_key": hub.state.key},
        program_version=program.version,
    ))


def _finish(session: Session, participant: Participant, program: Program,
            moment: datetime) -> None:
    hub = program.hub
    if hub is None or hub.finished is None:
        return
    already = session.exec(
        select(Delivery.id).where(Delivery.participant_id == participant.id,
                                  Delivery.kind == "finished").limit(1)
    ).first()
    if already is None:
        session.add(Delivery(participant_id=participant.id or 0, kind="finished",
                             template=hub.finished, due_at=moment,
                             program_version=program.version))


def evaluate(
    *, session: Session, participant: Participant, program: Program, moment: datetime
) -> str:
    """One evaluation of a participant (their row locked by the caller); what happened."""
    reason = participant.evaluation_reason or "periodic"
    participant.next_evaluation_at, participant.evaluation_reason = None, None
    session.add(participant)
    if not participant.receives_automated_content or program.hub is None or not program.levels:
        return "nothing to do"
    assert participant.id is not None
    record_missing(session=session, participant_id=participant.id, moment=moment)
    settle_decisions(session=session, participant_id=participant.id, moment=moment)
    run = open_run(session, participant.id)
    previous: InterventionRun | None = None
    if run is not None:
        if run_is_over(session, run, moment):
            close_run(session=session, participant=participant, program=program, run=run,
                         moment=moment, end_reason="completed")
            previous, run = run, None
        elif reason in ("state", "checkin") and _outranked(session, participant, program, run,
                                                          moment):
            close_run(session=session, participant=participant, program=program, run=run,
                         moment=moment, end_reason="a higher priority came first")
            previous, run = run, None
    if run is not None:
        if reason == "periodic" and program.hub.state is not None:
            _ask_state(session, participant, program, moment)
        schedule(participant=participant, program=program, moment=moment, run=run)
        return f"{run.intervention} continues"
    if previous is None:
        previous = session.exec(
            select(InterventionRun).where(InterventionRun.participant_id == participant.id)
            .order_by(col(InterventionRun.ended_at).desc(), col(InterventionRun.id).desc())
            .limit(1)
        ).first()
    days = (local_day(moment, participant) - local_day(participant.enrolled_at,
                                                             participant)).days
    if program.duration_days is not None and days >= program.duration_days:
        _finish(session, participant, program, moment)
        return "program finished"
    if reason in ("periodic", "start") and program.hub.state is not None:
        _ask_state(session, participant, program, moment)
        request(participant, "state", moment + STATE_WAIT)
        return "asked the state assessment"
    picked = choose(session=session, participant=participant, program=program, moment=moment,
                    previous=previous, reason=reason)
    if picked is None:
        if _all_achieved(session, participant.id, program):
            _finish(session, participant, program, moment)
            return "every intervention achieved"
        schedule(participant=participant, program=program, moment=moment, run=None)
        return "nothing fits now"
    intervention, why = picked
    run = start_run(session=session, participant=participant, program=program,
                       intervention=intervention, moment=moment, reason=why)
    if program.hub.narrative:
        session.add(Delivery(
            participant_id=participant.id, kind="narrative", run_id=run.id,
            template=program.hub.narrative, due_at=moment,
            context={"reason": reason, "previous_run": previous.id if previous else None},
            program_version=program.version,
        ))
    schedule(participant=participant, program=program, moment=moment, run=run)
    return f"started {intervention.key}"


def _outranked(session: Session, participant: Participant, program: Program,
               run: InterventionRun, moment: datetime) -> bool:
    """Whether a level above the running intervention's has come into need."""
    state = rule_context(session=session, participant=participant, program=program, run=None,
                            moment=moment)
    achieved = {key for key, outcome in state["outcomes"].items() if outcome == "achieved"}
    for level in program.levels:
        if level.key == run.level:
            return False
        startable = any(key not in achieved for key in level.interventions)
        if startable and level.need is not None and _in_need(level, state, participant.id or 0):
            return True
    return False


def _all_achieved(session: Session, participant_id: int, program: Program) -> bool:
    achieved = set(session.exec(
        select(InterventionRun.intervention).where(
            InterventionRun.participant_id == participant_id,
            InterventionRun.outcome == "achieved",
        )
    ))
    return all(i.key in achieved for i in program.interventions)


def begin(*, participant: Participant, program: Program) -> None:
    """At enrollment: the hub's first evaluation, at the program's first day and time."""
    if program.hub is None or not program.levels:
        return
    hub = program.hub
    day = local_day(participant.enrolled_at, participant) + timedelta(days=hub.first_day)
    first = local_moment(day, hub.at, zone(participant.timezone))
    participant.next_evaluation_at = max(first, as_utc(participant.enrolled_at))
    participant.evaluation_reason = "start"


def claim_due(*, engine: Engine, limit: int, moment: datetime | None = None) -> list[int]:
    """Participants whose evaluation is due, leased for LEASE (a lost job is retried then).

    As the outbox claims (`outbox._claim`): the ids are picked first, FOR UPDATE SKIP LOCKED
    on PostgreSQL so racing dispatchers take disjoint participants, then leased by one
    conditional UPDATE, in one transaction; never `UPDATE ... WHERE id IN (subquery)`.
    """
    moment = moment or now()
    table = Participant.__table__  # type: ignore[attr-defined]
    still_due = table.c.next_evaluation_at <= moment
    with engine.begin() as connection:
        chosen = select(table.c.id).where(still_due).order_by(
            table.c.next_evaluation_at, table.c.id
        ).limit(limit)
        if connection.dialect.name == "postgresql":
            chosen = chosen.with_for_update(skip_locked=True)
        ids = list(connection.execute(chosen).scalars())
        if not ids:
            return []
        # Still due: without row locks (SQLite) another process may have leased them.
        return list(connection.execute(
            update(table)
            .where(table.c.id.in_(ids), still_due)
            .values(next_evaluation_at=moment + LEASE)
            .returning(table.c.id)
        ).scalars())


def evaluate_participant(*, engine: Engine, programs: dict[str, Program], participant_id: int,
                         moment: datetime | None = None) -> str:
    """The hub job for one participant: lock them, evaluate, commit."""
    moment = moment or now()
    with session_scope(engine) as session:
        locks = session.get_bind().dialect.name == "postgresql"
        participant = session.exec(
            _LOCKED_PARTICIPANT if locks else _PARTICIPANT,
            params={"participant": participant_id},
        ).first()
        if participant is None:
            return "no such participant"
        program = programs.get(participant.program)
        if program is None:
            return _without_program(session=session, programs=programs,
                                    participant=participant, moment=moment)
        return evaluate(session=session, participant=participant, program=program,
                        moment=moment)


def _without_program(*, session: Session, programs: dict[str, Program],
                     participant: Participant, moment: datetime) -> str:
    """A program that cannot be loaded now: the evaluation waits and an alert is raised. Only
    a program removed on purpose (its folder is gone) ends its participants' schedules."""
    from bot.store import alerts
    from bot.store.queries import cancel_pending

    name = participant.program
    reason = unavailable_reason(programs, name)
    if reason is not None:
        participant.next_evaluation_at = moment + UNAVAILABLE_RETRY
        session.add(participant)
        alerts.raise_once(session=session, kind="content", detail=unavailable_alert(name, reason))
        return f"waiting: program {name} cannot be loaded"
    cancel_pending(session=session, participant=participant, reason=f"program {name} was removed")
    cancel_open_runs(session=session, participant=participant, reason="program removed")
    participant.evaluation_reason = None
    session.add(participant)
    log.info("participant %s: program %s was removed; schedule ended", participant.id, name)
    return f"program {name} was removed"


def cancel_open_runs(*, session: Session, participant: Participant, reason: str) -> None:
    """Opt-out or pause: running interventions stop where they are (no outcome judged)."""
    moment = now()
    session.exec(
        update(InterventionRun)
        .where(col(InterventionRun.participant_id) == participant.id,
               col(InterventionRun.ended_at).is_(None))
        .values(ended_at=moment, end_reason=reason[:40], outcome=None)
    )
    participant.next_evaluation_at, participant.evaluation_reason = None, None
    session.add(participant)

