"""A question an event asks, built from a program file's assessment, and its re-prompt."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from bot.care.assessments.wording import normalize, words

Kind = Literal["yes_no", "scale", "choice", "number", "text"]
KINDS: tuple[str, ...] = get_args(Kind)


@dataclass(frozen=True)
class Question:
    """What an event asks: the kind of answer expected and its bounds or options."""

    kind: Kind
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse questions no reply could answer, so mistakes surface when a program loads."""
        if self.kind not in KINDS:
            raise ValueError(f"unknown question type {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.kind == "scale" and (self.minimum is None or self.maximum is None):
            raise ValueError("a scale question needs both 'min' and 'max'")
        if self.kind in ("scale", "number"):
            low, high = self.minimum, self.maximum
            if low is not None and high is not None and low >= high:
                raise ValueError(f"'min' ({low}) must be below 'max' ({high})")
        elif self.minimum is not None or self.maximum is not None:
            raise ValueError(f"a {self.kind} question takes no 'min' or 'max'")
        if self.kind != "choice":
            if self.choices:
                raise ValueError(f"only a choice question takes 'choices', not a {self.kind}")
            return
        if len(self.choices) < 2:
            raise ValueError("a choice question needs at least two choices")
        keys = [" ".join(words(normalize(c))) for c in self.choices]
        if not all(keys):
            raise ValueError("every choice needs some words, e.g. 'walk'")
        if len(set(keys)) != len(keys):
            raise ValueError("two choices read the same; make each one different")


@dataclass(frozen=True)
class Parsed:
    """A reply read against a question: the typed value, or why it could not be read."""

    value: bool | int | float | str | None
    ok: bool
    reason: str = ""


def fail(reason: str) -> Parsed:
    return Parsed(value=None, ok=False, reason=reason)


def _whole(spec: Mapping[str, Any], key: str, kind: str) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"a {kind} question's '{key}' must be a whole number, not {value!r}")
    return value


def question_from_spec(spec: Mapping[str, Any]) -> Question:
    """Build a question from a program file's assessment, e.g. {"type": "scale", "min": 1, ...}."""
    if not isinstance(spec, Mapping):
        raise ValueError("an assessment should be a mapping like {type: scale, min: 1, max: 5}")
    kind = spec.get("type")
    if kind not in KINDS:
        shown = "no 'type'" if kind is None else f"type {kind!r}"
        raise ValueError(f"an assessment has {shown}; use one of {', '.join(KINDS)}")
    minimum, maximum = _whole(spec, "min", kind), _whole(spec, "max", kind)
    if kind == "scale":
        # The same defaults a program file gets when it leaves the bounds out.
        minimum = 1 if minimum is None else minimum
        maximum = 5 if maximum is None else maximum
    raw_choices = spec.get("choices", ())
    if isinstance(raw_choices, str) or not isinstance(raw_choices, Iterable):
        raise ValueError("'choices' should be a list, e.g. [walk, call a friend, rest]")
    choices = tuple(raw_choices)
    if not all(isinstance(c, str) and c.strip() for c in choices):
        raise ValueError("every choice should be some text, e.g. 'walk'")
    return Question(
        kind=kind,
        minimum=minimum,
        maximum=maximum,
        choices=tuple(c.strip() for c in choices),
    )


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def prompt_hint(question: Question) -> str:
    """The clarifying re-prompt for a reply that could not be read."""
    low, high = question.minimum, question.maximum
    if question.kind == "yes_no":
        return "Please reply YES or NO."
    if question.kind == "choice":
        numbers = [str(i) for i in range(1, len(question.choices) + 1)]
        options = ", ".join(f"{n} {c}" for n, c in zip(numbers, question.choices, strict=True))
        return f"Please reply with {_listing(numbers)} ({options})."
    if question.kind == "text":
        return "Please reply with a few words."
    if low is not None and high is not None:
        return f"Please reply with a number from {low} to {high}."
    if low is not None:
        return f"Please reply with a number of {low} or more."
    if high is not None:
        return f"Please reply with a number up to {high}."
    return "Please reply with a number."
