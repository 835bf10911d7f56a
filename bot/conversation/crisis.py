"""Crisis language in an inbound text, matched against the maintained list in crisis_phrases.txt.

Patterns run over a texting-aware reading of the message (see ``prepare``): emoji become spaces,
letters stretched for emphasis are folded ("dieeee"), and common texting spellings are read as
the words they stand for ("u", "wanna", "dont", "rn"), so the phrase file is written once, in
standard spelling. The phrase reported to a coordinator is still the participant's own words.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from bot.conversation.intents import normalize

PHRASES_PATH = Path(__file__).with_name("crisis_phrases.txt")
# Most serious first; the phrase file must list its sections in this order.
CATEGORIES = ("suicide", "self-harm", "danger")

_HEADER = re.compile(r"\[([^\]]+)\]")
_ESCAPES = re.compile(r"\\.")  # \W, \S, \B ... are not capital letters

# --- Reading a text the way it was meant --------------------------------------------------
# A word (letters and digits, with apostrophes inside: "don't"), a run of spaces, or one other
# character (punctuation, emoji).
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|\s+|.", re.DOTALL)
# A letter typed three or more times in a row: "soooo", "dieeee", "killl".
_STRETCHED = re.compile(r"([^\W\d_])\1{2,}")
_DIGIT = re.compile(r"\d")
# Digits typed for letters inside a word: "k1ll", "su1cide", "d13". Only in words that also
# have letters, and not 2, 5, 7, 8 or 9 ("2nd", "5kms", "l8r" stay as they are).
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a"})
# Emoji that stand for a means; every other emoji or symbol reads as a space.
_EMOJI_WORDS = {
    "\U0001f48a": "pills",
    "\U0001f52b": "gun",
    "\U0001f52a": "knife",
    "\U0001faa2": "rope",
}
_SEPARATOR_CATEGORIES = frozenset({"So", "Sk", "Cf", "Co", "Cs", "Mn", "Me"})

# Texting spellings, read as the standard words the phrase file is written in. Keys are whole
# words, already lowercased and with stretched letters folded. Only spellings that are not
# also ordinary words ("ill", "id", "its", "shed", "were" are left alone).
# fmt: off
SPELLINGS: dict[str, str] = {
    # pronouns and "to be"
    "u": "you", "ya": "you", "yu": "you", "ur": "your", "youre": "you're", "yall": "you all",
    "r": "are", "b": "be", "n": "and",
    "im": "i'm", "ive": "i've", "ima": "i'm going to", "imma": "i'm going to",
    "hes": "he's", "shes": "she's", "theyre": "they're", "thats": "that's", "whats": "what's",
    "wats": "what's", "wat": "what", "wut": "what", "theres": "there's",
    "youll": "you'll", "theyll": "they'll", "itll": "it'll", "youve": "you've", "theyve": "they've",
    # negations without their apostrophe
    "dont": "don't", "dnt": "don't", "doesnt": "doesn't", "didnt": "didn't", "cant": "can't",
    "cannot": "can't", "wont": "won't", "wouldnt": "wouldn't", "couldnt": "couldn't",
    "shouldnt": "shouldn't", "isnt": "isn't", "arent": "aren't", "wasnt": "wasn't",
    "werent": "weren't", "aint": "ain't", "havent": "haven't", "hasnt": "hasn't",
    "hadnt": "hadn't",
    # contracted verbs
    "wanna": "want to", "wana": "want to", "wanta": "want to", "gonna": "going to",
    "gona": "going to", "gunna": "going to", "finna": "going to", "tryna": "trying to",
    "gotta": "got to", "boutta": "about to", "bouta": "about to", "hafta": "have to",
    "lemme": "let me", "gimme": "give me", "kinda": "kind of", "sorta": "sort of",
    # shorthand
    "abt": "about", "bc": "because", "bcuz": "because", "becuz": "because", "cuz": "because",
    "coz": "because", "cos": "because", "rn": "right now", "tho": "though", "thru": "through",
    "nite": "night", "tonite": "tonight", "lastnight": "last night", "tmrw": "tomorrow",
    "tmr": "tomorrow", "tmrow": "tomorrow", "2moro": "tomorrow", "ppl": "people",
    "pls": "please", "plz": "please", "jus": "just", "jst": "just", "rly": "really",
    "realy": "really", "alot": "a lot", "anymor": "anymore", "nomore": "no more",
    "noone": "no one", "no1": "no one", "every1": "everyone", "some1": "someone",
    "any1": "anyone", "evry1": "everyone", "everythin": "everything", "nothin": "nothing",
    "somethin": "something",
    # people
    "bf": "boyfriend", "gf": "girlfriend", "hubby": "husband", "mum": "mom",
    # words people often misspell in these messages
    "kil": "kill", "kiling": "killing", "myslef": "myself", "mysefl": "myself",
    "myseld": "myself", "mysrlf": "myself", "myelf": "myself", "mself": "myself",
    "mysel": "myself", "meself": "myself", "dieing": "dying", "dyin": "dying",
    "livin": "living", "tryin": "trying", "goin": "going", "cuttin": "cutting",
    "hurtin": "hurting", "killin": "killing", "oded": "overdosed", "od'd": "overdosed",
    "od'ed": "overdosed",
}
# fmt: on


@dataclass(frozen=True)
class PreparedText:
    """One reading of a message for matching, with where each of its pieces came from.

    ``source`` is the message after ``intents.normalize`` (lowercased, one apostrophe,
    single spaces). The reading is made of pieces (a word as read, a space, a punctuation mark);
    piece ``i`` starts at ``offsets[i]`` in ``text`` and was read from
    ``source[spans[i][0]:spans[i][1]]``.
    """

    text: str
    source: str
    offsets: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]

    def source_of(self, start: int, end: int) -> str:
        """The participant's words behind ``text[start:end]``, whole words."""
        first = bisect_right(self.offsets, start) - 1
        last = bisect_right(self.offsets, max(start, end - 1)) - 1
        return self.source[self.spans[first][0] : self.spans[last][1]].strip()


def _read(source: str, stretched_to: int) -> PreparedText:
    pieces: list[str] = []
    offsets: list[int] = []
    spans: list[tuple[int, int]] = []
    length = 0
    space = True  # at the start, or just after a space: no (further) space
    stretched = _STRETCHED.search(source) is not None
    digits = _DIGIT.search(source) is not None
    fold = (lambda m: m.group(1) * stretched_to) if stretched else None
    for token in _TOKEN.finditer(source):
        piece = token.group()
        if piece[0].isalnum():
            if stretched:
                piece = _STRETCHED.sub(fold, piece)
            if digits and piece not in SPELLINGS and _DIGIT.search(piece) and not piece.isdigit():
                piece = piece.translate(_LEET)
            piece = SPELLINGS.get(piece, piece)
        elif piece in _EMOJI_WORDS:
            piece = f" {_EMOJI_WORDS[piece]} "
        elif piece.isspace() or unicodedata.category(piece) in _SEPARATOR_CATEGORIES:
            piece = " "
        if space and piece[0] == " ":
            piece = piece[1:]
            if not piece:
                continue
        pieces.append(piece)
        offsets.append(length)
        spans.append(token.span())
        length += len(piece)
        space = piece[-1] == " "
    text = "".join(pieces)
    if space and text:
        text = text[:-1]
    return PreparedText(text, source, tuple(offsets), tuple(spans))


def prepare(body: str) -> list[PreparedText]:
    """The readings of a message that patterns are searched in.

    Normalized as ``intents.normalize`` does, then: emoji and symbols read as spaces (💊,
    🔫, 🔪 and 🪢 as the words pills, gun, knife, rope), a letter typed three or more times read
    once ("dieeee" -> "die"), digits inside words read as letters ("k1ll" -> "kill") and the
    texting spellings in SPELLINGS read as standard words ("u" -> "you", "wanna" -> "want to",
    "dont" -> "don't"). A stretched letter may stand for a double one ("killll"), so when the
    message has one there is a second reading that folds it to two letters instead of one.
    """
    source = normalize(body)
    if not source:
        return []
    once = _read(source, 1)
    if not once.text:
        return []  # emoji or symbols only
    if not _STRETCHED.search(source):
        return [once]
    twice = _read(source, 2)
    return [once] if twice.text == once.text else [once, twice]


# --- The phrase file ------------------------------------------------------------------------


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
        # Messages are matched lowercased (and without IGNORECASE, which makes every search
        # several times slower), so a capital letter would never match.
        letters = _ESCAPES.sub("", line)
        if letters != letters.lower():
            raise fail(f"write patterns in lowercase (messages are matched lowercased): {line}")
        try:
            # Word boundaries here, so a maintainer cannot forget them and match inside words.
            regex = re.compile(rf"\b(?:{line})\b")
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


_Searches = tuple[tuple[str, tuple[re.Pattern[str], ...]], ...]


def ready() -> None:
    """Read and compile the shipped phrase list now; otherwise the first text does it."""
    _default_searches()


@cache
def _default_searches() -> _Searches:
    """The shipped list's searches, made once per process (looking a list up in the cache below
    hashes every pattern of it, which costs more than searching a short text)."""
    return _searches(_default_phrases())


@lru_cache(maxsize=16)
def _searches(phrases: tuple[CrisisPattern, ...]) -> _Searches:
    """Per category, most serious first, the regexes that find its phrases.

    One alternation of all the category's patterns, in file order, searched once: much faster
    than one search per pattern on a long text. A pattern with groups of its own (which would
    renumber or clash when joined) is searched on its own.
    """
    searches = []
    for category in CATEGORIES:
        patterns = [p for p in phrases if p.category == category]
        if not patterns:
            continue
        if any(p.regex.groups for p in patterns):
            searches.append((category, tuple(p.regex for p in patterns)))
        else:
            joined = "|".join(p.regex.pattern for p in patterns)
            searches.append((category, (re.compile(joined),)))
    return tuple(searches)


def detect(body: str, phrases: list[CrisisPattern] | None = None) -> CrisisMatch | None:
    """The crisis phrase in the message from the most serious category that has one.

    Within that category, the phrase reported is the first in the message (at the same place,
    the pattern that comes first in the file).
    """
    readings = prepare(body)
    if not readings:
        return None
    searches = _default_searches() if phrases is None else _searches(tuple(phrases))
    for category, regexes in searches:
        for reading in readings:
            found = [m for m in (r.search(reading.text) for r in regexes) if m is not None]
            if found:
                first = min(found, key=lambda m: m.start())
                return CrisisMatch(reading.source_of(first.start(), first.end()), category)
    return None


# --- Measuring the list -----------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """How a phrase list does on a labelled set of messages."""

    crisis: int
    everyday: int
    missed: tuple[str, ...]
    false_alarms: tuple[str, ...]
    # (message, expected category, category given) for crises caught under another category
    wrong_category: tuple[tuple[str, str, str], ...]

    @property
    def caught(self) -> int:
        return self.crisis - len(self.missed)

    @property
    def recall(self) -> float:
        """Share of crisis messages that alert (under any category)."""
        return self.caught / self.crisis if self.crisis else 1.0

    @property
    def false_alarm_rate(self) -> float:
        """Share of everyday messages that alert."""
        return len(self.false_alarms) / self.everyday if self.everyday else 0.0

    def summary(self) -> str:
        return (
            f"recall {self.caught}/{self.crisis} = {self.recall:.3f}, "
            f"false alarms {len(self.false_alarms)}/{self.everyday} = "
            f"{self.false_alarm_rate:.3f}, other category {len(self.wrong_category)}"
        )


def evaluate(
    crisis: Iterable[tuple[str, str]],
    everyday: Iterable[str],
    phrases: list[CrisisPattern] | None = None,
) -> Evaluation:
    """Recall on ``crisis`` ((message, category) pairs) and false alarms on ``everyday``."""
    crisis = list(crisis)
    everyday = list(everyday)
    missed: list[str] = []
    wrong: list[tuple[str, str, str]] = []
    for message, category in crisis:
        match = detect(message, phrases)
        if match is None:
            missed.append(message)
        elif match.category != category:
            wrong.append((message, category, match.category))
    false_alarms = [message for message in everyday if detect(message, phrases) is not None]
    return Evaluation(
        crisis=len(crisis),
        everyday=len(everyday),
        missed=tuple(missed),
        false_alarms=tuple(false_alarms),
        wrong_category=tuple(wrong),
    )
