"""Choice answers: an option by its words, a prefix or inflection of them, or its number."""

from __future__ import annotations

import re

from bot.care.assessments.numeric import NUMBER_WORDS
from bot.care.assessments.question import Parsed, Question, fail
from bot.care.assessments.wording import normalize, words

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


def read_choice(question: Question, text: str) -> Parsed:
    options = [words(normalize(c)) for c in question.choices]
    tokens = words(text)
    if any(t in ("both", "all", "either", "neither", "none") for t in tokens):
        return fail("names no single option")
    spans = _written_out(tokens, options)
    named = {i for _, i in spans}
    covered = {k for (start, end), _ in spans for k in range(start, end)}
    rest = [t for k, t in enumerate(tokens) if k not in covered]
    option_words = {w for option in options for w in option}
    number = _option_number(rest, option_words, text, len(options))
    if isinstance(number, Parsed):
        return number
    if number is not None:
        named.add(number - 1)
    if not spans:
        named |= _named_by_a_word(rest, options, option_words)
    if not named:
        return fail("matches no option")
    if len(named) > 1:
        return fail(
            "matches more than one option ("
            + ", ".join(question.choices[i] for i in sorted(named))
            + ")"
        )
    return Parsed(value=question.choices[named.pop()], ok=True)


def _written_out(tokens: list[str], options: list[list[str]]) -> list[tuple[tuple[int, int], int]]:
    """(span, option) of each option written out in full; one inside a longer one does not
    count: "walk with a friend" is not "walk"."""
    spans = [(s, i) for i, option in enumerate(options) for s in _contains(tokens, option)]
    return [
        (span, i)
        for span, i in spans
        if not any(o != span and o[0] <= span[0] and span[1] <= o[1] for o, _ in spans)
    ]


def _option_number(
    rest: list[str], option_words: set[str], text: str, count: int
) -> int | None | Parsed:
    """The option number a reply gives (1-based), None without one, or why it cannot be read."""
    numbers: list[int] = []
    for token in rest:
        if token in option_words:
            continue  # a digit or number word that is part of an option's own text
        if token in NUMBER_WORDS:
            numbers.append(NUMBER_WORDS[token])
        elif re.fullmatch(r"\d+", token):
            numbers.append(int(token))
    if re.search(r"\d[.,]\d", text):
        return fail("options are numbered with whole numbers")
    if len(set(numbers)) > 1:
        return fail(f"more than one option number ({', '.join(map(str, dict.fromkeys(numbers)))})")
    if not numbers:
        return None
    if not 1 <= numbers[0] <= count:
        return fail(f"there is no option {numbers[0]}")
    return numbers[0]


def _named_by_a_word(rest: list[str], options: list[list[str]], option_words: set[str]) -> set[int]:
    """Options one of whose own words (or a prefix or inflection of it) the reply uses."""
    content = [t for t in rest if t not in _FILLER_WORDS and not t.isdigit()]
    content = [t for t in content if t not in NUMBER_WORDS or t in option_words]
    named = set()
    for i, option in enumerate(options):
        keys = [w for w in option if w not in _FILLER_WORDS] or option
        if any(_word_matches(t, w) for t in content for w in keys):
            named.add(i)
    return named
