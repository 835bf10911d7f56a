"""The tables of human support: staff, the audit log, conversations, notes, saved replies and
the notifications that reach a person when a participant needs one."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.store.models import _when

ROLES = ("admin", "coordinator", "coach", "analyst")


class Staff(SQLModel, table=True):
    """A person who signs in to the console. Never deleted: the audit log names them."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)  # stored lowercased
    name: str = Field(default="", max_length=120)
    role: str = Field(max_length=16)  # admin, coordinator, coach, analyst
    password_hash: str = Field(max_length=255)
    totp_secret: str | None = Field(default=None, max_length=64)  # set: a second factor is asked
    totp_last_step: int | None = None  # the last code's time step: a code is accepted once
    sees_bodies: bool = False  # an analyst granted message bodies
    failed_logins: int = 0
    locked_until: datetime | None = _when()
    last_login_at: datetime | None = _when()
    created_at: datetime = _when(nullable=False)
    removed_at: datetime | None = _when()


class AuditEvent(SQLModel, table=True):
    """Append-only: who saw or did what, about which participant, when."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(nullable=False, index=True)
    staff_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    actor: str = Field(max_length=254)  # the staff email then, "system", or "sms:<masked number>"
    action: str = Field(max_length=64, index=True)  # e.g. view-number, send-text, resolve
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    detail: str = Field(default="", sa_type=sa.Text)
    address: str = Field(default="", max_length=64)  # the client's IP address


class AuditLogError(RuntimeError):
    """An attempt to change or delete what the audit log says happened."""


@sa.event.listens_for(AuditEvent, "before_update")
@sa.event.listens_for(AuditEvent, "before_delete")
def _append_only(_mapper: object, _connection: object, event: AuditEvent) -> None:
    raise AuditLogError(f"audit event {event.id} cannot be changed or deleted: the log is "
                        f"append-only")


class Conversation(SQLModel, table=True):
    """A participant who needs a person, from the reason it opened until a person resolves it."""

    __table_args__ = (sa.Index("ix_conversation_open", "resolved_at", "severity", "waiting_since"),)

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    phone: str = Field(default="", max_length=32)  # the number, also for one not enrolled
    reason: str = Field(max_length=32)  # crisis, human, unreadable, paused, unanswered, staff
    severity: int = 2  # 0 crisis, 1 a request for a person, 2 everything else
    alert_id: int | None = Field(default=None, foreign_key="alert.id", index=True)
    opened_at: datetime = _when(nullable=False)
    waiting_since: datetime | None = _when()  # the oldest participant text not yet answered
    target_at: datetime | None = _when()  # when a first reply is due
    assigned_to: int | None = Field(default=None, foreign_key="staff.id", index=True)
    first_reply_at: datetime | None = _when()
    first_reply_by: int | None = Field(default=None, foreign_key="staff.id")
    resolved_at: datetime | None = _when()
    resolved_by: int | None = Field(default=None, foreign_key="staff.id")
    outcome: str | None = Field(default=None, max_length=64)  # called, safe; referred; ...


class StaffNote(SQLModel, table=True):
    """A note staff keep about a participant; never shown to the participant."""

    __tablename__ = "staff_note"

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id", index=True)
    staff_id: int = Field(foreign_key="staff.id")
    body: str = Field(sa_type=sa.Text)
    created_at: datetime = _when(nullable=False)


class SavedReply(SQLModel, table=True):
    """A reply coordinators keep ready for coaches."""

    __tablename__ = "saved_reply"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=120)
    body: str = Field(sa_type=sa.Text)
    updated_by: int | None = Field(default=None, foreign_key="staff.id")
    updated_at: datetime = _when(nullable=False)
    removed_at: datetime | None = _when()


class Notification(SQLModel, table=True):
    """One message to a person about an alert: an SMS to an on-call number, an email, a webhook
    post; each escalation round adds its own."""

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    channel: str = Field(max_length=16)  # sms, email, webhook
    target: str = Field(max_length=254)  # the number, the address, the webhook's host
    round: int = 0  # 0 at once, then one per escalation
    created_at: datetime = _when(nullable=False)
    sent_at: datetime | None = _when()
    status: str = Field(default="pending", max_length=16)  # pending, sent, failed
    provider_sid: str | None = Field(default=None, max_length=64, index=True)
    error: str | None = Field(default=None, max_length=500)
