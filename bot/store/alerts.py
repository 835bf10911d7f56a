"""Alerts for the people running a study: raised once while open, resolved by a coordinator."""

from __future__ import annotations

from sqlmodel import Session, col, select

from bot.store.models import Alert


def raise_once(
    *, session: Session, kind: str, detail: str, participant_id: int | None = None
) -> Alert:
    """The open alert of this kind and detail, or a new one: a problem that holds back many
    participants' work (a program that cannot be loaded) is one alert, not one per message."""
    detail = detail[:2000]
    found = session.exec(
        select(Alert).where(
            Alert.kind == kind, Alert.detail == detail, col(Alert.resolved_at).is_(None),
            Alert.participant_id == participant_id if participant_id is not None
            else col(Alert.participant_id).is_(None),
        )
    ).first()
    if found is not None:
        return found
    alert = Alert(kind=kind, detail=detail, participant_id=participant_id)
    session.add(alert)
    session.flush()
    return alert
