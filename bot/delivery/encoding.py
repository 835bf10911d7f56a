"""SMS encoding: GSM-7 or UCS-2, segment counts, and characters that silently force UCS-2."""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")  # each costs two septets
GSM7 = frozenset(GSM7_BASIC | GSM7_EXTENDED)

# Look-alikes that editors insert and that would turn a 160-character text into a 70-character one.
LOOKALIKES = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2010": "-", "\u2011": "-", "\u2212": "-",
    "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2009": " ", "\u202f": " ", "\u200b": "",
    "\u2026": "...", "\u2022": "-", "\u00b4": "'", "\u02bc": "'",
}

_LOOKALIKE_TABLE = str.maketrans(LOOKALIKES)

MAX_CHARACTERS = 1600  # Twilio refuses longer bodies
WARN_SEGMENTS = 2


@dataclass(frozen=True)
class Encoded:
    body: str
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int
    characters: int


def normalize(text: str) -> str:
    """Replace look-alike punctuation so a message stays in GSM-7 when it can."""
    return text.translate(_LOOKALIKE_TABLE)


def encode(text: str) -> Encoded:
    """Normalize `text` and count its segments (GSM-7 160/153, UCS-2 70/67)."""
    body = normalize(text)
    characters = set(body)
    if characters <= GSM7:
        units = len(body) + sum(body.count(c) for c in characters & GSM7_EXTENDED)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        # UTF-16 code units: characters outside the BMP (most emoji) take two.
        units = len(body.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    segments = 1 if units <= single else -(-units // multi)
    return Encoded(body=body, encoding=encoding, segments=segments, characters=len(body))
