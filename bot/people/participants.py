"""Participants as staff look them up: their state in words, and a search over a study's people."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, func, select

from bot.store.models import ConsentEvent, InboundMessage, Participant

STATUSES = ("active", "paused", "opted_out", "unreachable")
STATUS_LABELS = {
    "active": "Active", "paused": "Paused", "opted_out": "Opted out", "unreachable": "Unreachable",
}


@dataclass(frozen=True)
class Status:
    key: str  # one of STATUSES
    since: datetime | None
    why: str = ""

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.key]


def status_of(participant: Participant, pause_reason: str = "") -> Status:
    """What reaches them now: an opt-out outranks an unreachable number, which outranks a pause."""
    if participant.opted_out_at is not None:
        return Status("opted_out", participant.opted_out_at)
    if participant.undeliverable_at is not None:
        return Status("unreachable", participant.undeliverable_at,
                      participant.undeliverable_reason or "")
    if participant.paused_at is not None:
        return Status("paused", participant.paused_at, pause_reason)
    return Status("active", participant.enrolled_at)


def pause_reasons(session: Session, participant_ids: Iterable[int]) -> dict[int, str]:
    """Why each paused participant was paused: the newest pause in the consent record."""
    ids = list(participant_ids)
    if not ids:
        return {}
    newest = (
        select(ConsentEvent.participant_id, func.max(ConsentEvent.id).label("id"))
        .where(col(ConsentEvent.participant_id).in_(ids), ConsentEvent.kind == "paused")
        .group_by(col(ConsentEvent.participant_id))
        .subquery()
    )
    rows = session.exec(
        select(ConsentEvent.participant_id, ConsentEvent.via).join(
            newest, col(ConsentEvent.id) == newest.c.id
        )
    )
    return dict(rows.all())


def last_texts(session: Session, participant_ids: Iterable[int]) -> dict[int, datetime]:
    """When each participant last texted, for those who ever did."""
    ids = list(participant_ids)
    if not ids:
        return {}
    rows = session.exec(
        select(InboundMessage.participant_id, func.max(InboundMessage.received_at))
        .where(col(InboundMessage.participant_id).in_(ids))
        .group_by(col(InboundMessage.participant_id))
    )
    return {pid: at for pid, at in rows.all() if pid is not None}


def _with_status(query, status: str):  # type: ignore[no-untyped-def]
    opted, unreachable, paused = (
        col(Participant.opted_out_at), col(Participant.undeliverable_at), col(Participant.paused_at)
    )
    if status == "opted_out":
        return query.where(opted.is_not(None))
    if status == "unreachable":
        return query.where(opted.is_(None), unreachable.is_not(None))
    if status == "paused":
        return query.where(opted.is_(None), unreachable.is_(None), paused.is_not(None))
    if status == "active":
        return query.where(opted.is_(None), unreachable.is_(None), paused.is_(None))
    raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")


def search(
    session: Session,
    *,
    participant_id: int | None = None,
    phone: str | None = None,
    phone_digits: str | None = None,
    program: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Participant], int]:
    """Participants matching every filter given (newest first), and how many match in all.

    `phone` is a whole E.164 number; `phone_digits` the last digits of one (at least four).
    """
    query = select(Participant)
    if participant_id is not None:
        query = query.where(Participant.id == participant_id)
    if phone:
        query = query.where(Participant.phone == phone)
    if phone_digits:
        if len(phone_digits) < 4 or not phone_digits.isdigit():
            raise ValueError("give at least the last four digits of a number")
        query = query.where(col(Participant.phone).endswith(phone_digits))
    if program:
        query = query.where(Participant.program == program)
    if status:
        query = _with_status(query, status)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(Participant.id).desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def programs_in_use(session: Session) -> list[str]:
    return sorted(session.exec(select(Participant.program).distinct()).all())


def counts_by_status(session: Session) -> dict[str, int]:
    """How many participants are in each state, for the search page's summary."""
    opted, unreachable, paused = (
        col(Participant.opted_out_at), col(Participant.undeliverable_at), col(Participant.paused_at)
    )
    row = session.exec(
        select(
            func.count().filter(opted.is_(None), unreachable.is_(None), paused.is_(None)),
            func.count().filter(opted.is_(None), unreachable.is_(None), paused.is_not(None)),
            func.count().filter(opted.is_not(None)),
            func.count().filter(opted.is_(None), unreachable.is_not(None)),
        ).select_from(Participant)
    ).one()
    return dict(zip(("active", "paused", "opted_out", "unreachable"), row, strict=True))

