"""Crisis language and what follows it: the alert, the pause, the safety reply, and the texts
that come while the alert is open."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, col, select

from bot.clock import now
from bot.conversation import crisis
from bot.conversation.intents import Intent
from bot.conversation.replies import help_text, replied_recently
from bot.participants import consent
from bot.participants.phones import mask
from bot.people.escalation import schedule_first_notification
from bot.people.oncall import promise
from bot.settings import Settings
from bot.store.models import Alert, AlertMessage, InboundMessage, Participant

if TYPE_CHECKING:
    from bot.conversation.inbound import _Programs
    from bot.conversation.records import ReceivedText
    from bot.conversation.replies import InboundResult

log = logging.getLogger(__name__)

def raise_crisis(
    *, session: Session, message: ReceivedText, participant: Participant | None,
    danger: crisis.CrisisMatch,
) -> Alert:
    """The crisis alert, with its category, and the pause of automated content."""
    alert = Alert(
        participant_id=participant.id if participant else None,
        kind="crisis",
        category=danger.category,
        detail=f"{danger.category}: matched '{danger.phrase}' from {mask(message.from_phone)}",
        inbound_message_id=message.id,
    )
    schedule_first_notification(alert, now())  # the dispatcher's next tick tells a person
    session.add(alert)
    session.flush()  # its id, for the conversation it opens
    log.warning("crisis language from %s (%s)", mask(message.from_phone), danger.category)
    if participant is not None:
        consent.pause(session=session, participant=participant, reason="crisis language")
    return alert


PAUSED_LINE = "Automated messages stay paused until our team has been in touch with you."
CRISIS_REPEAT_INTERVAL = timedelta(minutes=15)  # the resources again at most this often


def safety_reply(settings: Settings, timezone: str | None = None) -> str:
    """The reply to crisis language: the resources, and what happens next. It says a person
    will reach out only when a notification channel reaches one (and, with STAFFED_HOURS,
    within them); otherwise when someone will see the message (bot.people.oncall.promise)."""
    next_step = promise(settings, now(), timezone)
    return f"We care about your safety. {settings.crisis_resources} {next_step}"


def open_crisis_alert(*, session: Session, phone: str) -> int | None:
    """The newest unresolved crisis alert of a number that is not enrolled (the alert's first
    text came from it). An enrolled sender's is read with their state (records.sender_state)."""
    return session.exec(
        select(Alert.id)
        .join(InboundMessage, col(InboundMessage.id) == col(Alert.inbound_message_id))
        .where(Alert.kind == "crisis", col(Alert.resolved_at).is_(None),
               InboundMessage.from_phone == phone, col(Alert.participant_id).is_(None))
        .order_by(col(Alert.id).desc())
    ).first()


def after_crisis(
    *,
    session: Session,
    settings: Settings,
    programs: _Programs,
    message: ReceivedText,
    participant: Participant | None,
    alert_id: int,
    intent: Intent,
    result: InboundResult,
    reply: Callable[..., None],
) -> InboundResult:
    """A text while a crisis alert is open: kept with the alert, answered with the resources
    (at most every CRISIS_REPEAT_INTERVAL), HELP and START answered truthfully."""
    session.add(AlertMessage(alert_id=alert_id, inbound_message_id=message.id))
    result.intent = "crisis-followup"
    result.needs_person, result.alert_id = "crisis", alert_id
    if participant is not None and intent is Intent.OPT_IN and participant.opted_out_at:
        consent.opt_in(session=session, participant=participant, program=programs.get(
            participant.program), via=message.body.strip()[:60])
        reply("confirmation", f"You're subscribed again. {PAUSED_LINE} "
                              f"{settings.crisis_resources}")
        return result
    if intent is Intent.HELP:
        program = programs.get(participant.program) if participant else None
        reply("help", f"{help_text(settings, program, programs.all())} "
                      f"{settings.crisis_resources}", versioned=False)
        return result
    if participant is not None and participant.opted_out_at is not None:
        return result  # opted out: nothing but the confirmation; the text stays with the alert
    if intent is Intent.OPT_IN:  # START is always answered: messages stay paused
        reply("safety", f"{PAUSED_LINE} {settings.crisis_resources}", versioned=False)
        return result
    if not replied_recently(session=session, phone=message.from_phone,
                            intents=("crisis", "crisis-followup"),
                            within=CRISIS_REPEAT_INTERVAL, exclude=message.id):
        reply("safety", safety_reply(settings, participant.timezone if participant else None),
              versioned=False)
    return result
