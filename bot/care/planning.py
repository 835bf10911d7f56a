"""When each event of a program falls for a participant, and the outbox rows that plan it.

Program-wide events keep the calendar from enrollment; a micro intervention's events start as one
block when the hub starts it (`start_run`), and move by whole local days so wall times hold."""

from __future__ import annotations

import logging
import random
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session

from bot.care.programs import EventSpec, Intervention, Program
from bot.care.timing import local_moment, shift_local_days, zone
from bot.clock import as_utc
from bot.store.models import (
    Delivery,
    InterventionRun,
    Participant,
)

log = logging.getLogger(__name__)


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
    reminded: list[tuple[Delivery, EventSpec]] = []
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
                reminded.append((prompt, event))
    if reminded:
        session.flush()  # one INSERT for the prompts; each reminder names its prompt's id
        for prompt, event in reminded:
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

