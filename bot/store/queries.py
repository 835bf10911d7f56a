"""Queries several parts share."""

from __future__ import annotations

from sqlmodel import Session, col, update

from bot.clock import now
from bot.store.models import Delivery, DeliveryStatus, Participant

PENDING = (DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED)


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
