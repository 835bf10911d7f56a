"""Proximal assessments: read a participant's reply into a typed value, tolerantly.

Tolerant means spelling, case, punctuation, emoji and extra words are forgiven; it never means
guessing. A reply that could mean two things is not ok, so the caller re-prompts once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, get_args

Kind = Literal["yes_no", "scale", "choice", "number", "text"]
KINDS: tuple[str, ...] = get_args(Kind)

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
        keys = [" ".join(_words(_normalize(c))) for c in self.choices]
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


def _fail(reason: str) -> Parsed:
    return Parsed(value=None, ok=False, reason=reason)


# --- text clean-up -------------------------------------------------------------------------

_PUNCTUATION = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    }
)  # fmt: skip
# Variation selectors and skin tones change how an emoji looks, never what it says.
_EMOJI_STYLE = re.compile("[\ufe0e\ufe0f\U0001f3fb-\U0001f3ff]")
_KEYCAP = re.compile("([0-9])\ufe0f?\u20e3")
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|\S")


def _normalize(text: str) -> str:
    """Fold the ways phones write the same thing: full-width and keycap digits, quotes, case."""
    text = unicodedata.normalize("NFKC", text)
    text = _KEYCAP.sub(r"\1", text).replace("\U0001f51f", " 10 ")
    text = _EMOJI_STYLE.sub("", text).translate(_PUNCTUATION)
    # Digits of other scripts (Arabic-Indic, Devanagari...) read as the numbers they are.
    text = "".join(
        str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text
    )
    return " ".join(text.casefold().split())


def _words(text: str) -> list[str]:
    """Word tokens without apostrophes ("didn't" -> "didnt"), punctuation and emoji dropped."""
    return [t.replace("'", "") for t in _TOKEN.findall(text) if t[0].isalnum()]


# --- numbers -------------------------------------------------------------------------------

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
        return _fail("no number found")
    if len(distinct) > 1:
        return _fail(f"more than one number ({', '.join(_show(n) for n in distinct)})")
    return distinct[0]


def _bounds(value: Decimal, minimum: int | None, maximum: int | None) -> Parsed:
    shown = _show(value)
    if minimum is not None and maximum is not None:
        if not minimum <= value <= maximum:
            return _fail(f"{shown} is out of range {minimum}-{maximum}")
    elif minimum is not None and value < minimum:
        return _fail(f"{shown} is below the minimum {minimum}")
    elif maximum is not None and value > maximum:
        return _fail(f"{shown} is above the maximum {maximum}")
    return Parsed(value=_plain(value), ok=True)


def _parse_scale(question: Question, text: str) -> Parsed:
    assert question.minimum is not None and question.maximum is not None
    low, high = question.minimum, question.maximum
    text = _number_words_to_digits(text)
    # "4 stars" and "4⭐" name the number; a row of stars is counted.
    text = _STAR_AS_UNIT.sub(r"\1", text)
    text = _STAR_RUN.sub(lambda m: f" {sum(ch in _STARS for ch in m.group())} ", text)
    for match in _OUT_OF.finditer(text):
        if int(match.group(3)) != high:
            # "3/4" on a 1-5 scale is a date or another scale; rescaling it would be a guess.
            return _fail(f"{match.group()} is not on the {low}-{high} scale")
    text = _OUT_OF.sub(r"\1", text)
    value = _one_number(_numbers(text))
    if isinstance(value, Parsed):
        return value
    if value != value.to_integral_value():
        return _fail(f"{_show(value)} is not a whole number")
    return _bounds(value, low, high)


def _parse_number(question: Question, text: str) -> Parsed:
    text = _number_words_to_digits(text)
    text = re.sub(r"\b(?:none|nothing|nil)\b", "0", text)
    # "2 out of 3 pills" counts 2; "7/8" could be a date or a fraction, so it stays two numbers.
    text = re.sub(r"(?<![\d.,])(\d+(?:[.,]\d+)?)\s*(?:out of|of)\s*\d+(?![\d.,])", r"\1", text)
    value = _one_number(_numbers(text))
    if isinstance(value, Parsed):
        return value
    return _bounds(value, question.minimum, question.maximum)


# --- yes / no ------------------------------------------------------------------------------

YES, NO, UNSURE, ASIDE = "yes", "no", "unsure", "aside"


def _phrases(meaning: str, phrases: str) -> dict[tuple[str, ...], str]:
    """Comma-separated phrases as word tuples, apostrophes dropped as replies' words are."""
    return {tuple(p.replace("'", "").split()): meaning for p in phrases.split(",")}


_YES_NO_PHRASES = {
    **_phrases(
        YES,
        "y, ye, yes, yea, yeah, yeh, ya, yah, yep, yup, yas, aye, sure, ok, okay, k, kk, ofc,"
        "definitely, absolutely, certainly, totally, indeed, affirmative, correct, true, did, done,"
        "of course, i did, did it, i have, i sure did, all done, no doubt, you bet,"
        "👍, ✅, ✔, ☑, ✓, 👌",
    ),
    **_phrases(
        NO,
        "n, no, nope, nah, naw, nay, never, negative, didn't, haven't, hasn't, couldn't, wasn't,"
        "skipped, forgot, missed, not really, not today, not yet, not done, not at all,"
        "not this time, did not, i did not, i didn't, have not, i have not, i haven't, could not,"
        "was not, i don't, i do not, no way, no thanks, no thank you, 👎, ❌, ✖, ✗, ✘, 🚫",
    ),
    **_phrases(
        UNSURE,
        "maybe, perhaps, possibly, probably, idk, idek, dunno, unsure, kinda, sorta, partly,"
        "partially, somewhat, sometimes, half, halfway, mostly, almost, don't know, i don't know,"
        "not sure, not really sure, no idea, no clue, kind of, sort of, a bit, a little, not ok,"
        "not okay, not bad, not quite, not fully, not completely, not all, not much, 🤷",
    ),
    # Courtesies that contain "no" but answer nothing: "no problem, yes I did it" is a yes.
    **_phrases(
        ASIDE,
        "no problem, no problems, no prob, no probs, np, no worries, not a problem, don't worry",
    ),
}
_LONGEST_PHRASE = max(len(k) for k in _YES_NO_PHRASES)
_NEGATORS = {"not", "never"}


def _yes_no_tokens(text: str) -> list[str]:
    """Words and emoji in order; other punctuation becomes "|" so no phrase spans a clause."""
    tokens = []
    for token in _TOKEN.findall(text):
        if token[0].isalnum():
            word = token.replace("'", "")
            if (word,) not in _YES_NO_PHRASES:
                # "yesss", "nooo", "yeahhh": an elongated word means the word.
                squeezed = re.sub(r"(.)\1+", r"\1", word)
                word = squeezed if (squeezed,) in _YES_NO_PHRASES else word
            tokens.append(word)
        else:
            tokens.append(token if (token,) in _YES_NO_PHRASES else "|")
    return tokens


def _parse_yes_no(text: str) -> Parsed:
    tokens = _yes_no_tokens(text)
    meanings: list[str] = []
    i = 0
    while i < len(tokens):
        for size in range(min(_LONGEST_PHRASE, len(tokens) - i), 0, -1):
            meaning = _YES_NO_PHRASES.get(tuple(tokens[i : i + size]))
            if meaning is not None:
                break
        else:
            size, meaning = 1, None
        if meaning is None and tokens[i] in _NEGATORS and i + 1 < len(tokens):
            # "not definitely", "never done": a negated yes is too odd to read either way.
            following = _YES_NO_PHRASES.get((tokens[i + 1],))
            if following == YES:
                size, meaning = 2, UNSURE
        if meaning is not None:
            meanings.append(meaning)
        i += size
    if UNSURE in meanings:
        return _fail("sounds unsure")
    if YES in meanings and NO in meanings:
        return _fail("says both yes and no")
    if YES in meanings:
        return Parsed(value=True, ok=True)
    if NO in meanings:
        return Parsed(value=False, ok=True)
    return _fail("no yes or no found")


# --- choice --------------------------------------------------------------------------------

# Words that carry no choice of their own ("I'll go for the walk", "option 2 please").
_FILLER_WORDS = frozenset({
    "a", "an", "the", "to", "of", "and", "or", "with", "for", "in", "on", "at", "by", "my", "me",
    "i", "im", "ill", "id", "ive", "it", "its", "is", "was", "will", "would", "do", "did", "done",
    "go", "going", "get", "some", "just", "please", "thanks", "thank", "you", "ty", "thx", "ok",
    "okay", "option", "choice", "number", "pick", "choose", "prefer", "like", "want", "think",
    "today", "tonight", "lets", "yes", "no",
})  # fmt: skip


def _contains(tokens: list[str], phrase: list[str]) -> list[tuple[int, int]]:
    """Where `phrase` occurs in `tokens`, as (start, end) spans."""
    size = len(phrase)
    return [(i, i + size) for i in range(len(tokens) - size + 1) if tokens[i : i + size] == phrase]


_INFLECTION = re.compile(r"(?:s|es|d|ed|ing|ings)")


def _word_matches(word: str, option_word: str) -> bool:
    """A word is an option's word, a prefix of it ("cal") or an inflection of it ("walked")."""
    if word == option_word or (len(word) >= 3 and option_word.startswith(word)):
        return True
    if len(option_word) < 3:
        return False
    # "walk" -> "walked", "take" -> "taking", "jog" -> "jogging"; not "rest" -> "restaurant".
    for stem in {option_word, option_word.removesuffix("e"), option_word + option_word[-1]}:
        if word.startswith(stem) and _INFLECTION.fullmatch(word[len(stem) :]):
            return True
    return False


def _parse_choice(question: Question, text: str) -> Parsed:
    options = [_words(_normalize(c)) for c in question.choices]
    tokens = _words(text)
    if any(t in ("both", "all", "either", "neither", "none") for t in tokens):
        return _fail("names no single option")

    # An option written out in full wins over one of its words: "walk with a friend" is not "walk".
    spans = [(s, i) for i, option in enumerate(options) for s in _contains(tokens, option)]
    spans = [
        (span, i)
        for span, i in spans
        if not any(o != span and o[0] <= span[0] and span[1] <= o[1] for o, _ in spans)
    ]
    named = {i for _, i in spans}
    covered = {k for (start, end), _ in spans for k in range(start, end)}
    rest = [t for k, t in enumerate(tokens) if k not in covered]

    option_words = {w for option in options for w in option}
    numbers: list[int] = []
    for token in rest:
        if token in option_words:
            continue  # a digit or number word that is part of an option's own text
        if token in NUMBER_WORDS:
            numbers.append(NUMBER_WORDS[token])
        elif re.fullmatch(r"\d+", token):
            numbers.append(int(token))
    if re.search(r"\d[.,]\d", text):
        return _fail("options are numbered with whole numbers")
    if len(set(numbers)) > 1:
        return _fail(f"more than one option number ({', '.join(map(str, dict.fromkeys(numbers)))})")
    if numbers:
        number = numbers[0]
        if not 1 <= number <= len(options):
            return _fail(f"there is no option {number}")
        named.add(number - 1)

    if not spans:
        content = [t for t in rest if t not in _FILLER_WORDS and not t.isdigit()]
        content = [t for t in content if t not in NUMBER_WORDS or t in option_words]
        for i, option in enumerate(options):
            keys = [w for w in option if w not in _FILLER_WORDS] or option
            if any(_word_matches(t, w) for t in content for w in keys):
                named.add(i)

    if not named:
        return _fail("matches no option")
    if len(named) > 1:
        return _fail(
            "matches more than one option ("
            + ", ".join(question.choices[i] for i in sorted(named))
            + ")"
        )
    return Parsed(value=question.choices[named.pop()], ok=True)


# --- public API ----------------------------------------------------------------------------


def parse(question: Question, text: str) -> Parsed:
    """Read `text` as an answer to `question`; not ok, with a reason, when unreadable or unclear."""
    if question.kind == "text":
        stripped = text.strip()
        return Parsed(value=stripped, ok=True) if stripped else _fail("empty reply")
    normalized = _normalize(text)
    if not normalized:
        return _fail("empty reply")
    if question.kind == "yes_no":
        return _parse_yes_no(normalized)
    if question.kind == "scale":
        return _parse_scale(question, normalized)
    if question.kind == "number":
        return _parse_number(question, normalized)
    return _parse_choice(question, normalized)


def parse_scale(text: str, minimum: int, maximum: int) -> int | None:
    """The one number in `text` within [minimum, maximum] ("4", "4/5", "four!", "a 3"), or None."""
    parsed = parse(Question("scale", minimum, maximum), text)
    return parsed.value if parsed.ok and isinstance(parsed.value, int) else None


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
