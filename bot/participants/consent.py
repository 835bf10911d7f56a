"""Consent: opt-out, opt-in, pause and resume, each kept in the append-only consent record."""

from __future__ import annotations

import logging

from sqlmodel import Session

from bot.care import hub
from bot.care.programs import Program
from bot.clock import now
from bot.store.models import ConsentEvent, Participant
from bot.store.queries import cancel_pending

log = logging.getLogger(__name__)


def record_consent(*, session: Session, participant: Participant, kind: str, via: str) -> None:
    """Append to the consent record (never updated or deleted)."""
    session.add(ConsentEvent(participant_id=participant.id or 0, kind=kind, via=via[:80],
                             at=now()))


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
        from bot.participants.enrollment import plan_events

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
        from bot.participants.enrollment import plan_events

        plan_events(session=session, participant=participant, program=program)
        if program.levels:
            hub.request(participant, "resume")
