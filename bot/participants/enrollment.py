"""Enrollment, opt-out, opt-in and pauses: the participant's consent and what it schedules."""

from __future__ import annotations

import logging
import re
from datetime import datetime

from sqlmodel import Session, col, select, update

from bot.care import hub
from bot.care.programs import Program
from bot.care.timing import zone
from bot.clock import now
from bot.participants.phones import mask, normalize
from bot.store.models import ConsentEvent, Delivery, DeliveryStatus, Participant

log = logging.getLogger(__name__)

PENDING = (DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED)


class EnrollmentError(ValueError):
    """An enrollment that cannot be made, with a reason a coordinator can act on."""


def record_consent(*, session: Session, participant: Participant, kind: str, via: str) -> None:
    """Append to the consent record (never updated or deleted)."""
    session.add(ConsentEvent(participant_id=participant.id or 0, kind=kind, via=via[:80],
                             at=now()))


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
    from bot.care.engine import plan_occurrences

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


def cancel_pending(*, session: Session, participant: Participant, reason: str) -> int:
    """Cancel every delivery not yet handed to the provider; returns how many."""
    result = session.exec(
        update(Delivery)
        .where(
            col(Delivery.participant_id) == participant.id,
            col(Delivery.status).in_(PENDING),
            col(Delivery.via) == "api",
        )
        .values(status=DeliveryStatus.CANCELLED, error_message=reason, final_at=now())
    )
    return result.rowcount or 0


def opt_out(*, session: Session, participant: Participant, reason: str) -> bool:
    """Record an opt-out and cancel pending events; False if they had already opted out."""
    cancel_pending(session=session, participant=participant, reason=f"opted out ({reason})")
    hub.cancel_open_runs(session=session, participant=participant, reason="opted out")
    if participant.opted_out_at is not None:
        return False
    participant.opted_out_at = now()
    session.add(participant)
    record_consent(session=session, participant=participant, kind="opted_out", via=reason)
    log.info("participant %s opted out (%s)", participant.id, reason)
    return True


def opt_in(
    *, session: Session, participant: Participant, program: Program | None, via: str = "START"
) -> bool:
    """Re-subscribe after an opt-out and re-plan the events still ahead (while not paused).

    The opt-out itself stays in the consent record."""
    if participant.opted_out_at is None:
        return False
    participant.opted_out_at = None
    session.add(participant)
    record_consent(session=session, participant=participant, kind="opted_in", via=via)
    if program is not None and participant.paused_at is None:
        plan_events(session=session, participant=participant, program=program)
        if program.levels:
            hub.request(participant, "resume")
    log.info("participant %s opted back in", participant.id)
    return True


def pause(*, session: Session, participant: Participant, reason: str) -> None:
    """Stop automated content (crisis) until a coordinator resumes it."""
    if participant.paused_at is None:
        participant.paused_at = now()
        session.add(participant)
        record_consent(session=session, participant=participant, kind="paused", via=reason)
    cancel_pending(session=session, participant=participant, reason=f"paused ({reason})")
    hub.cancel_open_runs(session=session, participant=participant, reason="paused")


def resume(
    *, session: Session, participant: Participant, program: Program | None, via: str = "bot resume"
) -> None:
    """Lift a pause and re-plan the events still ahead; the pause stays in the consent record."""
    if participant.paused_at is not None:
        record_consent(session=session, participant=participant, kind="resumed", via=via)
    participant.paused_at = None
    session.add(participant)
    if program is not None and participant.opted_out_at is None:
        plan_events(session=session, participant=participant, program=program)
        if program.levels:
            hub.request(participant, "resume")
