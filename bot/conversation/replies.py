"""Replies every part of a conversation may give: HELP, and the line on how to stop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from sqlmodel import Session, col, select

from bot.care.programs import Program
from bot.clock import now
from bot.settings import Settings
from bot.store.models import InboundMessage

STOP_LINE = "Reply STOP to stop, HELP for help."


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
