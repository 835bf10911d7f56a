"""Folding the ways phones write the same reply, and splitting it into words."""

from __future__ import annotations

import re
import unicodedata

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
TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|\S")


def normalize(text: str) -> str:
    """Fold the ways phones write the same thing: full-width and keycap digits, quotes, case."""
    text = unicodedata.normalize("NFKC", text)
    text = _KEYCAP.sub(r"\1", text).replace("\U0001f51f", " 10 ")
    text = _EMOJI_STYLE.sub("", text).translate(_PUNCTUATION)
    # Digits of other scripts (Arabic-Indic, Devanagari...) read as the numbers they are.
    text = "".join(
        str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text
    )
    return " ".join(text.casefold().split())


def words(text: str) -> list[str]:
    """Word tokens without apostrophes ("didn't" -> "didnt"), punctuation and emoji dropped."""
    return [t.replace("'", "") for t in TOKEN.findall(text) if t[0].isalnum()]
