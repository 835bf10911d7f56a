"""Proximal assessments: read a participant's reply into a typed value, tolerantly.

Tolerant means spelling, case, punctuation, emoji and extra words are forgiven; it never means
guessing. A reply that could mean two things is not ok, so the caller re-prompts once.
"""

from __future__ import annotations

from bot.care.assessments.choice import read_choice
from bot.care.assessments.numeric import NUMBER_WORDS, TENS_WORDS, read_number, read_scale
from bot.care.assessments.question import (
    KINDS,
    Kind,
    Parsed,
    Question,
    fail,
    prompt_hint,
    question_from_spec,
)
from bot.care.assessments.wording import normalize
from bot.care.assessments.yes_no import read_yes_no

__all__ = [
    "KINDS", "NUMBER_WORDS", "TENS_WORDS", "Kind", "Parsed", "Question", "parse", "parse_scale",
    "prompt_hint", "question_from_spec",
]


def parse(question: Question, text: str) -> Parsed:
    """Read `text` as an answer to `question`; not ok, with a reason, when unreadable or unclear."""
    if question.kind == "text":
        stripped = text.strip()
        return Parsed(value=stripped, ok=True) if stripped else fail("empty reply")
    normalized = normalize(text)
    if not normalized:
        return fail("empty reply")
    if question.kind == "yes_no":
        return read_yes_no(normalized)
    if question.kind == "scale":
        return read_scale(question, normalized)
    if question.kind == "number":
        return read_number(question, normalized)
    return read_choice(question, normalized)


def parse_scale(text: str, minimum: int, maximum: int) -> int | None:
    """The one number in `text` within [minimum, maximum] ("4", "4/5", "four!", "a 3"), or None."""
    parsed = parse(Question("scale", minimum, maximum), text)
    return parsed.value if parsed.ok and isinstance(parsed.value, int) else None
