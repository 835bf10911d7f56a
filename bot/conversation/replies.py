"""Replies every part of a conversation may give: HELP, and the line on how to stop; and the
replies to one text, each recorded as a delivery when it goes to a participant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, select

from bot.care.programs import Program
from bot.clock import now
from bot.conversation.records import reply_delivery
from bot.delivery.encoding import encode
from bot.settings import Settings
from bot.store.models import InboundMessage, Participant

STOP_LINE = "Reply STOP to stop, HELP for help."


@dataclass
class InboundResult:
    """What one text was, and the replies to send back at once (in the webhook's answer)."""

    replies: list[str] = field(default_factory=list)
    duplicate: bool = False
    intent: str = ""
    needs_person: str | None = None  # why a person should see it (bot.people.conversations)
    alert_id: int | None = None  # the crisis alert it raised or joined
    # The replies to a participant, as delivery rows: written with the text's outcome.
    deliveries: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def add(
        self, text: str, *, participant: Participant | None = None, kind: str = "reply",
        program: Program | None = None,
    ) -> None:
        """Answer with `text`; to a participant, the reply is kept as a delivery too, so the
        history shows every message sent (with the program version it came from)."""
        encoded = encode(text)
        self.replies.append(encoded.body)
        if participant is not None:
            self.deliveries.append(reply_delivery(
                participant_id=participant.id or 0, kind=kind, body=encoded.body,
                segments=encoded.segments, encoding=encoded.encoding,
                program_version=program.version if program else None, moment=now(),
            ))


def help_text(
    settings: Settings, program: Program | None, programs: Mapping[str, Program]
) -> str:
    if program is None:
        joins = ", ".join(k for p in programs.values() for k in p.join_keywords[:1])
        joins = joins or "the word your coordinator gave you"
        return (
            f"Tend text-message programs. To join, text {joins}. "
            f"Questions: {settings.coordinator_contact}. Text STOP to stop."
        )
    contact = program.contact or settings.coordinator_contact
    return (
        f"{program.title}: {program.frequency}. Questions: {contact}. "
        f"Text STOP to stop, START to resume. Msg&data rates may apply."
    )


def replied_recently(
    *, session: Session, phone: str, intents: Sequence[str], within: timedelta,
    exclude: int | None,
) -> bool:
    """Whether a text of this number with one of `intents` got a reply within `within`: the
    rate limit of automatic replies (keeps loops and spam quiet, repeats the resources only so
    often)."""
    return session.exec(
        select(InboundMessage.id).where(
            InboundMessage.from_phone == phone,
            col(InboundMessage.reply).is_not(None),
            col(InboundMessage.intent).in_(intents),
            InboundMessage.received_at >= now() - within,
            InboundMessage.id != exclude,
        )
    ).first() is not None
