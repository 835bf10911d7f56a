"""Crisis language in an inbound text, matched against the maintained list in crisis_phrases.txt."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bot.intents import normalize

PHRASES_PATH = Path(__file__).with_name("crisis_phrases.txt")
CATEGORIES = ("suicide", "self-harm", "danger")

_HEADER = re.compile(r"\[([^\]]+)\]")


class CrisisPhraseError(ValueError):
    """The phrase file cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class CrisisPattern:
    """One line of the phrase file, compiled."""

    regex: re.Pattern[str]
    category: str
    source: str
    line: int


@dataclass(frozen=True)
class CrisisMatch:
    """What was found: the words as the participant wrote them (normalized) and their category."""

    phrase: str
    category: str


def load_phrases(path: Path | None = None) -> list[CrisisPattern]:
    """Compile the phrase file, refusing it whole if any line is unusable."""
    path = path or PHRASES_PATH
    patterns: list[CrisisPattern] = []
    seen: dict[str, int] = {}
    category: str | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue

        def fail(reason: str, number: int = number) -> CrisisPhraseError:
            return CrisisPhraseError(f"{path}, line {number}: {reason}")

        header = _HEADER.fullmatch(line)
        if header:
            category = header.group(1).strip().lower()
            if category not in CATEGORIES:
                raise fail(f"unknown category [{category}]; use one of {', '.join(CATEGORIES)}")
            continue
        if category is None:
            raise fail("pattern before any [category] header")
        if line in seen:
            raise fail(f"duplicate of line {seen[line]}")
        try:
            # Word boundaries here, so a maintainer cannot forget them and match inside words.
            regex = re.compile(rf"\b(?:{line})\b", re.IGNORECASE)
        except re.error as exc:
            raise fail(f"not a valid pattern ({exc.msg}): {line}") from None
        # An empty match would flag every message, "ok" included.
        if re.fullmatch(line, "") is not None:
            raise fail(f"pattern matches an empty message: {line}")
        seen[line] = number
        patterns.append(CrisisPattern(regex=regex, category=category, source=line, line=number))
    return patterns


@cache
def _default_phrases() -> tuple[CrisisPattern, ...]:
    """The shipped phrase list, read once per process."""
    return tuple(load_phrases())


def detect(body: str, phrases: list[CrisisPattern] | None = None) -> CrisisMatch | None:
    """The first crisis phrase in the message (in file order, most serious category first)."""
    text = normalize(body)
    if not text:
        return None
    for pattern in _default_phrases() if phrases is None else phrases:
        found = pattern.regex.search(text)
        if found:
            return CrisisMatch(phrase=found.group(0), category=pattern.category)
    return None
