"""Enrollment: who joins which program, with which attributes, and what it schedules."""

from __future__ import annotations

import logging
import re
from datetime import datetime

from sqlmodel import Session, col, select

from bot.care import hub
from bot.care.programs import Program
from bot.care.timing import zone
from bot.clock import now
from bot.participants.consent import record_consent
from bot.participants.phones import mask, normalize
from bot.store.models import Delivery, DeliveryStatus, Participant

log = logging.getLogger(__name__)

class EnrollmentError(ValueError):
    """An enrollment that cannot be made, with a reason a coordinator can act on."""


def find_by_phone(*, session: Session, phone: str) -> Participant | None:
    return session.exec(select(Participant).where(Participant.phone == phone)).first()


def enroll(
    *,
    session: Session,
    phone: str,
    program: Program,
    timezone: str,
    via: str,
    welcome_now: bool = True,
    region: str = "US",
    attributes: dict[str, str] | None = None,
) -> Participant:
    """Enroll a number in `program`; queue the welcome and plan the program's events."""
    number = normalize(phone, region)
    tz = zone(timezone).key
    own = check_attributes(program, attributes or {})
    if existing := find_by_phone(session=session, phone=number):
        raise EnrollmentError(
            f"{mask(number)} is already enrolled in {existing.program} "
            f"(participant {existing.id})"
        )
    participant = Participant(
        phone=number, program=program.name, timezone=tz, enrolled_via=via, enrolled_at=now(),
        attributes=own,
    )
    session.add(participant)
    session.flush()
    record_consent(session=session, participant=participant, kind="enrolled", via=via)
    if welcome_now:
        session.add(
            Delivery(
                participant_id=participant.id,
                kind="welcome",
                template=program.welcome_template,
                due_at=participant.enrolled_at,
                program_version=program.version,
            )
        )
    plan_events(session=session, participant=participant, program=program)
    hub.begin(participant=participant, program=program)
    session.add(participant)
    log.info("enrolled %s in %s via %s", mask(number), program.name, via)
    return participant


def check_attributes(program: Program, attributes: dict[str, str]) -> dict[str, str]:
    """A participant's own attribute values, checked against the program's attributes."""
    defaults = program.attribute_defaults
    checked: dict[str, str] = {}
    for name, value in attributes.items():
        if name not in defaults:
            known = ", ".join(defaults) or "none"
            raise EnrollmentError(
                f"{program.name} has no attribute {name!r} (its attributes: {known})"
            )
        if re.fullmatch(r"\d{1,2}:\d{2}", defaults[name]) and not re.fullmatch(
            r"([01]?\d|2[0-3]):[0-5]\d", value.strip()
        ):
            raise EnrollmentError(f"{name} should be a local time like {defaults[name]}")
        checked[name] = value.strip()
    return checked


def plan_events(
    *, session: Session, participant: Participant, program: Program, after: datetime | None = None
) -> int:
    """Add outbox rows for each program-wide event occurrence still ahead (once each)."""
    from bot.care.planning import plan_occurrences

    existing = set(
        session.exec(
            select(Delivery.event_key).where(
                Delivery.participant_id == participant.id,
                col(Delivery.status) != DeliveryStatus.CANCELLED,
                col(Delivery.event_key).is_not(None),
                col(Delivery.run_id).is_(None),
            )
        )
    )
    return len(
        plan_occurrences(
            session=session, participant=participant, program=program, events=program.events,
            moment=after or now(), existing=existing,
        )
    )
