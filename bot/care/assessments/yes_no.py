"""Yes / no answers: the many ways to say either, and replies that say both or neither."""

from __future__ import annotations

import re

from bot.care.assessments.question import Parsed, fail
from bot.care.assessments.wording import TOKEN

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
    for token in TOKEN.findall(text):
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


def read_yes_no(text: str) -> Parsed:
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
        return fail("sounds unsure")
    if YES in meanings and NO in meanings:
        return fail("says both yes and no")
    if YES in meanings:
        return Parsed(value=True, ok=True)
    if NO in meanings:
        return Parsed(value=False, ok=True)
    return fail("no yes or no found")
