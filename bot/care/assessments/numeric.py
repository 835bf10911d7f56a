"""Scale and number answers: digits, spelled-out numbers, "4/5", stars, within bounds."""

from __future__ import annotations

import re
from decimal import Decimal

from bot.care.assessments.question import Parsed, Question, fail

NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS_WORDS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip

_UNITS = "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))
_TENS = "|".join(TENS_WORDS)
_NUMBER_WORD = re.compile(rf"\b(?:({_TENS})(?:[\s-]+({_UNITS}))?|({_UNITS}))\b")
_HALF = re.compile(r"(?<![\d.,])(\d+)\s+and\s+a\s+half\b")
# A sign only where it starts a word, so "3-4" stays a range rather than 3 and -4; a dotted
# run like "12.3.2024" is a date or a version, not a number.
_NUMBER = re.compile(
    r"(?:(?<![^\s(~])([-+]))?(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+(?:[.,]\d+)?)(?![.,]?\d)"
)
_OUT_OF = re.compile(r"(?<![\d.,])(\d+(?:\.\d+)?)\s*(/|out of|of)\s*(\d+)(?![\d.,])")
_STARS = "\u2b50\U0001f31f\u2605"
_STAR_AS_UNIT = re.compile(rf"(\d+)\s*[{_STARS}](?![\s{_STARS}]*[{_STARS}])")
_STAR_RUN = re.compile(rf"[{_STARS}](?:\s*[{_STARS}])*")


def _number_words_to_digits(text: str) -> str:
    """Write spelled-out numbers as digits: "twenty-one" -> "21", "seven and a half" -> "7.5"."""

    def digits(match: re.Match[str]) -> str:
        tens, units, alone = match.groups()
        if alone:
            return str(NUMBER_WORDS[alone])
        return str(TENS_WORDS[tens] + (NUMBER_WORDS[units] if units else 0))

    text = _NUMBER_WORD.sub(digits, text)
    return _HALF.sub(lambda m: f"{m.group(1)}.5", text)


def _numbers(text: str) -> list[Decimal]:
    """Every number written with digits in `text`; a comma before three digits groups thousands."""
    found = []
    for sign, body in _NUMBER.findall(text):
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+", body):
            body = body.replace(",", "")
        found.append(Decimal(sign + body.replace(",", ".")))
    return found


def _plain(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _show(value: Decimal) -> str:
    return str(_plain(value))


def _one_number(numbers: list[Decimal]) -> Decimal | Parsed:
    """The single number a reply gives, or why there is not exactly one."""
    distinct = list(dict.fromkeys(numbers))
    if not distinct:
        return fail("no number found")
    if len(distinct) > 1:
        return fail(f"more than one number ({', '.join(_show(n) for n in distinct)})")
    return distinct[0]


def _bounds(value: Decimal, minimum: int | None, maximum: int | None) -> Parsed:
    shown = _show(value)
    if minimum is not None and maximum is not None:
        if not minimum <= value <= maximum:
            return fail(f"{shown} is out of range {minimum}-{maximum}")
    elif minimum is not None and value < minimum:
        return fail(f"{shown} is below the minimum {minimum}")
    elif maximum is not None and value > maximum:
        return fail(f"{shown} is above the maximum {maximum}")
    return Parsed(value=_plain(value), ok=True)


def read_scale(question: Question, text: str) -> Parsed:
    assert question.minimum is not None and question.maximum is not None
    low, high = question.minimum, question.maximum
    text = _number_words_to_digits(text)
    # "4 stars" and "4⭐" name the number; a row of stars is counted.
    text = _STAR_AS_UNIT.sub(r"\1", text)
    text = _STAR_RUN.sub(lambda m: f" {sum(ch in _STARS for ch in m.group())} ", text)
    for match in _OUT_OF.finditer(text):
        if int(match.group(3)) != high:
            # "3/4" on a 1-5 scale is a date or another scale; rescaling it would be a guess.
            return fail(f"{match.group()} is not on the {low}-{high} scale")
    text = _OUT_OF.sub(r"\1", text)
    value = _one_number(_numbers(text))
    if isinstance(value, Parsed):
        return value
    if value != value.to_integral_value():
        return fail(f"{_show(value)} is not a whole number")
    return _bounds(value, low, high)


def read_number(question: Question, text: str) -> Parsed:
    text = _number_words_to_digits(text)
    text = re.sub(r"\b(?:none|nothing|nil)\b", "0", text)
    # "2 out of 3 pills" counts 2; "7/8" could be a date or a fraction, so it stays two numbers.
    text = re.sub(r"(?<![\d.,])(\d+(?:[.,]\d+)?)\s*(?:out of|of)\s*\d+(?![\d.,])", r"\1", text)
    value = _one_number(_numbers(text))
    if isinstance(value, Parsed):
        return value
    return _bounds(value, question.minimum, question.maximum)
