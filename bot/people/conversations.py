"""Conversations: a participant who needs a person, from the text that opened it until a person
resolves it.

A conversation opens on crisis language, a request for a person, a reply the bot could not read
after asking once to clarify, a text while the participant is paused, and (INBOX_ANY_TEXT) any
text that answers no question; staff can also start one. While it is open every text of the
participant joins it. Its clock runs from the oldest text no person has answered yet: a first
human reply is due within CRISIS_REPLY_MINUTES for a crisis, within REPLY_WITHIN_HOURS (staffed
hours, when STAFFED_HOURS is set) for anything else.

A reply staff write is an outbox row like every message (claimed, sent once, its status
tracked), marked with its author; it reaches a paused participant, never one who opted out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from bot.care.program import Program
from bot.delivery.cap import quiet_until
from bot.delivery.encoding import MAX_CHARACTERS, encode
from bot.people import escalation
from bot.people.oncall import staff_zone
from bot.settings import Settings
from bot.store.models import Delivery, DeliveryStatus, Participant
from bot.store.support import Conversation, Staff, StaffNote

# Why a conversation opened, in the words the inbox shows.
REASONS = {
    "crisis": "Crisis language",
    "human": "Asked for a person",
    "unreadable": "A reply the bot could not read",
    "paused": "Texted while paused",
    "unanswered": "A text that answers no question",
    "staff": "Started by staff",
}
SEVERITY = {"crisis": 0, "human": 1}  # every other reason: 2
SEVERITY_LABELS = {0: "Crisis", 1: "Asked for a person", 2: "Needs a reply"}
OUTCOMES = (
    "Called, safe",
    "Texted, safe",
    "Referred to services",
    "Emergency services contacted",
    "Could not reach",
    "No action needed",
)
STAFF_KIND = "staff"  # the kind of a delivery a person wrote


class ConversationError(ValueError):
    """Something staff asked that cannot be done, said so they can act on it."""


@dataclass(frozen=True)
class QuietHours(ConversationError):
    """The participant's local time is inside quiet hours: sending needs a confirmation."""

    until: datetime

    def __str__(self) -> str:
        return "It is inside the participant's quiet hours."


def reply_due(settings: Settings, severity: int, since: datetime) -> datetime:
    """When the first human reply to a text of `since` is due."""
    if severity == 0:
        return since + timedelta(minutes=settings.crisis_reply_minutes)
    span = timedelta(hours=settings.reply_within_hours)
    hours = settings.staffed_hours
    if hours is None:
        return since + span
    return hours.after_open_time(since, span, staff_zone(settings)).astimezone(UTC)


def open_for(
    session: Session, *, participant_id: int | None, phone: str = ""
) -> Conversation | None:
    """The participant's open conversation (by number for a sender who is not enrolled)."""
    where = (
        col(Conversation.participant_id) == participant_id if participant_id is not None
        else (col(Conversation.participant_id).is_(None)) & (col(Conversation.phone) == phone)
    )
    return session.exec(
        select(Conversation).where(where, col(Conversation.resolved_at).is_(None))
        .order_by(col(Conversation.id).desc())
    ).first()


def note_text(
    session: Session, settings: Settings, *, participant_id: int | None, phone: str,
    reason: str | None, moment: datetime, alert_id: int | None = None,
    conversation_id: int | None = None,
) -> Conversation | None:
    """A participant's text: it joins their open conversation (its clock starts if it was not
    running), or opens one for `reason`. None when there is neither. `conversation_id` is the
    open one when the caller knows it already."""
    found = (
        session.get(Conversation, conversation_id) if conversation_id is not None
        else open_for(session, participant_id=participant_id, phone=phone)
    )
    if found is not None and found.resolved_at is not None:
        found = None
    if found is None and reason is None:
        return None
    severity = SEVERITY.get(reason or "", 2)
    if found is None:
        found = Conversation(
            participant_id=participant_id, phone="" if participant_id is not None else phone,
            reason=reason or "", severity=severity, opened_at=moment,
        )
    elif severity < found.severity:  # a crisis in a conversation about something else
        found.severity, found.reason = severity, reason or found.reason
        found.target_at = None
    if reason == "crisis" and alert_id is not None and found.alert_id is None:
        found.alert_id = alert_id
    if found.waiting_since is None:
        found.waiting_since, found.target_at = moment, None
    if found.target_at is None:
        found.target_at = reply_due(settings, found.severity, found.waiting_since)
    session.add(found)
    session.flush()
    return found


def start(session: Session, *, participant: Participant, staff: Staff,
          moment: datetime) -> Conversation:
    """A conversation a person starts from a participant's page (or the open one)."""
    found = open_for(session, participant_id=participant.id)
    if found is not None:
        return found
    conversation = Conversation(
        participant_id=participant.id, reason="staff", severity=2, opened_at=moment,
        assigned_to=staff.id,
    )
    session.add(conversation)
    session.flush()
    return conversation


def can_text(participant: Participant | None) -> str | None:
    """Why no text can go to this participant now, or None if one can."""
    if participant is None:
        return "This number is not enrolled: enroll it to text back."
    if participant.opted_out_at is not None:
        return "They opted out (STOP): no text can be sent until they text START."
    if participant.undeliverable_at is not None:
        return "Their number cannot receive texts (the carrier refused it)."
    return None


def send_reply(
    session: Session, settings: Settings, *, conversation: Conversation, staff: Staff,
    body: str, program: Program | None, moment: datetime, quiet_confirmed: bool = False,
) -> Delivery:
    """Queue a text a person wrote through the outbox; the conversation is answered.

    Raises ConversationError (nothing queued) for an empty or overlong text or a participant
    who cannot be texted, and QuietHours inside their quiet hours unless `quiet_confirmed`.
    """
    participant = (
        session.get(Participant, conversation.participant_id)
        if conversation.participant_id is not None else None
    )
    if (refusal := can_text(participant)) is not None:
        raise ConversationError(refusal)
    assert participant is not None
    encoded = encode(body.strip())
    if not encoded.body:
        raise ConversationError("Write the text to send.")
    if encoded.characters > MAX_CHARACTERS:
        raise ConversationError(f"The text has {encoded.characters} characters; at most "
                                f"{MAX_CHARACTERS} fit.")
    until = quiet_until(settings, program, participant.timezone, moment)
    if until is not None and not quiet_confirmed:
        raise QuietHours(until)
    delivery = Delivery(
        participant_id=participant.id, kind=STAFF_KIND, staff_id=staff.id, body=encoded.body,
        segments=encoded.segments, encoding=encoded.encoding, due_at=moment,
        status=DeliveryStatus.SCHEDULED, created_at=moment,
    )
    session.add(delivery)
    if conversation.first_reply_at is None:
        conversation.first_reply_at, conversation.first_reply_by = moment, staff.id
    conversation.waiting_since = conversation.target_at = None
    conversation.assigned_to = conversation.assigned_to or staff.id
    session.add(conversation)
    if conversation.alert_id is not None:  # a person is in touch: escalation stops
        escalation.acknowledge(session, conversation.alert_id, staff.email, moment)
    session.flush()
    return delivery


def assign(session: Session, conversation: Conversation, staff_id: int | None) -> None:
    if staff_id is not None:
        person = session.get(Staff, staff_id)
        if person is None or person.removed_at is not None or person.role == "analyst":
            raise ConversationError("Assign it to a coach, coordinator or admin.")
    conversation.assigned_to = staff_id
    session.add(conversation)


def add_note(session: Session, conversation: Conversation, staff: Staff, body: str,
             moment: datetime) -> StaffNote:
    text = body.strip()
    if not text:
        raise ConversationError("Write the note.")
    if conversation.participant_id is None:
        raise ConversationError("Notes are kept on enrolled participants only.")
    note = StaffNote(participant_id=conversation.participant_id, conversation_id=conversation.id,
                     staff_id=staff.id or 0, body=text[:5000], created_at=moment)
    session.add(note)
    return note


def resolve(session: Session, conversation: Conversation, staff: Staff, outcome: str,
            moment: datetime) -> None:
    """Closed with its outcome; the participant's next text needing a person opens a new one."""
    if outcome not in OUTCOMES:
        raise ConversationError("Choose how it ended.")
    if conversation.resolved_at is not None:
        raise ConversationError("It was resolved already.")
    conversation.resolved_at, conversation.resolved_by = moment, staff.id
    conversation.outcome = outcome
    conversation.waiting_since = conversation.target_at = None
    session.add(conversation)
    if conversation.alert_id is not None:  # the first acknowledgement stands
        escalation.acknowledge(session, conversation.alert_id, staff.email, moment)
