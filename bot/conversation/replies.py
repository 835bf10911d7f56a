"""Replies every part of a conversation may give: HELP, and the line on how to stop."""

from __future__ import annotations

from collections.abc import Mapping

from bot.care.programs import Program
from bot.settings import Settings

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
