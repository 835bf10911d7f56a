"""The audit log: every view of personal data and every action, appended and never changed.

A detail never holds a phone number or a message body: erasing a participant's data must not
have to rewrite what the log says happened.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from bot.clock import now
from bot.store.support import AuditEvent, Staff

# The actions the console records, for the log viewer's filter; others may be added.
ACTIONS = (
    "sign-in", "sign-in-failed", "sign-out", "signed-out-idle", "enable-totp", "disable-totp",
    "add-staff", "change-role", "remove-staff", "reset-lockout", "reset-totp", "reset-password",
    "search-number", "view-number", "view-history",
    "pause", "resume", "edit-attributes", "edit-timezone", "opt-out", "add-note",
    "view-conversation", "send-text", "start-conversation", "assign", "resolve-conversation",
    "view-alert", "acknowledge-alert", "resolve-alert",
    "add-saved-reply", "edit-saved-reply", "remove-saved-reply",
    "enroll", "import", "download-import-errors",
)


def record(
    session: Session,
    *,
    staff: Staff | None,
    action: str,
    participant_id: int | None = None,
    detail: str = "",
    address: str = "",
    actor: str | None = None,
) -> AuditEvent:
    """Append one event. `actor` names who acted when no staff account did (default "system")."""
    event = AuditEvent(
        at=now(),
        staff_id=staff.id if staff is not None else None,
        actor=(actor or (staff.email if staff is not None else "system"))[:254],
        action=action[:64],
        participant_id=participant_id,
        detail=detail[:2000],
        address=address[:64],
    )
    session.add(event)
    return event


def events(
    session: Session,
    *,
    staff_id: int | None = None,
    participant_id: int | None = None,
    action: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """The newest events first, filtered; `before_id` pages back from an event."""
    query = select(AuditEvent)
    if staff_id is not None:
        query = query.where(AuditEvent.staff_id == staff_id)
    if participant_id is not None:
        query = query.where(AuditEvent.participant_id == participant_id)
    if action:
        query = query.where(AuditEvent.action == action)
    if before_id is not None:
        query = query.where(col(AuditEvent.id) < before_id)
    return list(session.exec(query.order_by(col(AuditEvent.id).desc()).limit(limit)))


def actions_seen(session: Session) -> list[str]:
    """Every action the log holds, with the console's own, for a filter."""
    seen = set(session.exec(select(AuditEvent.action).distinct()))
    return sorted(seen | set(ACTIONS))
