"""SMS encoding: what a message costs in segments, and look-alikes that would force UCS-2."""

from __future__ import annotations

import pytest

from bot.delivery.encoding import GSM7_BASIC, GSM7_EXTENDED, LOOKALIKES, encode, normalize


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Hello! How did today go? Reply 1-5.", "GSM-7"),
        ("Café, Niño, Äpfel & £5 @ 10:00", "GSM-7"),
        ("Brackets [ok] {ok} ~ok~ | ^ € \\", "GSM-7"),
        ("Line one\nline two", "GSM-7"),
        ("Grüße aus Łódź", "UCS-2"),  # Ł and ź are not in GSM-7
        ("你好", "UCS-2"),
        ("Good job 👍", "UCS-2"),
        ("ç is lowercase and not in the basic table", "UCS-2"),
    ],
)
def test_it_detects_which_encoding_a_text_needs(text: str, encoding: str) -> None:
    assert encode(text).encoding == encoding


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_texts_split_at_160_then_153_characters(length: int, segments: int) -> None:
    encoded = encode("a" * length)
    assert encoded.encoding == "GSM-7"
    assert encoded.segments == segments


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_ucs2_texts_split_at_70_then_67_characters(length: int, segments: int) -> None:
    encoded = encode("ж" * length)
    assert encoded.encoding == "UCS-2"
    assert encoded.segments == segments


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("€" * 80, 1),  # 160 septets
        ("€" * 81, 2),  # 162 septets
        ("a" * 159 + "[", 2),  # 161 septets: the bracket costs two
        ("a" * 158 + "{", 1),
        ("a" * 304 + "~", 2),  # 306 septets
        ("a" * 305 + "~", 3),
    ],
)
def test_extended_characters_cost_two_septets(text: str, segments: int) -> None:
    encoded = encode(text)
    assert encoded.encoding == "GSM-7"
    assert encoded.segments == segments


@pytest.mark.parametrize(
    ("count", "segments"), [(35, 1), (36, 2), (67, 2), (68, 3)]
)
def test_an_emoji_counts_as_two_utf16_units(count: int, segments: int) -> None:
    encoded = encode("😀" * count)
    assert encoded.encoding == "UCS-2"
    assert encoded.characters == count
    assert encoded.segments == segments


def test_one_emoji_turns_a_one_segment_text_into_three() -> None:
    text = "a" * 140
    assert encode(text).segments == 1
    assert encode(text + "🙂").segments == 3  # 142 UTF-16 units at 67 per segment


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("It\u2019s \u201cfine\u201d", "It's \"fine\""),
        ("one \u2013 two \u2014 three", "one - two - three"),
        ("10\u00a0minutes", "10 minutes"),
        ("wait\u2026", "wait..."),
        ("\u2022 breathe", "- breathe"),
        ("zero\u200bwidth", "zerowidth"),
    ],
)
def test_lookalike_punctuation_is_replaced_with_plain_characters(text: str, plain: str) -> None:
    assert normalize(text) == plain


def test_a_text_pasted_from_a_word_processor_stays_gsm7_and_one_segment() -> None:
    # The kind of text a coordinator pastes from a document: smart quotes, dashes, nbsp.
    pasted = (
        "Today\u2019s tip \u2014 take a \u201cthree\u2011breath\u201d pause\u00a0before you "
        "reply\u2026 It helps. Reply 1\u20135 to tell us how today went."
    )
    assert len(pasted) <= 160
    encoded = encode(pasted)
    assert encoded.encoding == "GSM-7"
    assert encoded.segments == 1
    assert all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in encoded.body)


def test_every_lookalike_is_replaced_by_gsm7_characters() -> None:
    for original, replacement in LOOKALIKES.items():
        assert original not in GSM7_BASIC
        assert all(c in GSM7_BASIC for c in replacement), repr(original)


def test_the_encoded_body_is_the_text_that_will_be_sent() -> None:
    encoded = encode("It\u2019s done")
    assert encoded.body == "It's done"
    assert encoded.characters == len("It's done")
