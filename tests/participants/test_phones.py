"""Phone numbers: normalized to E.164, refused without echoing them, masked everywhere."""

from __future__ import annotations

import pytest

from bot.participants.phones import PhoneNumberError, mask, normalize


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(415) 555-0123", "US", "+14155550123"),
        ("415-555-0123", "US", "+14155550123"),
        ("415 555 0123", "US", "+14155550123"),
        ("415.555.0123", "US", "+14155550123"),
        ("4155550123", "US", "+14155550123"),
        ("1 415 555 0123", "US", "+14155550123"),
        ("+1 (415) 555-0123", "US", "+14155550123"),
        ("  +14155550123  ", "US", "+14155550123"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("07911 123456", "GB", "+447911123456"),
        ("+44 7911 123456", "GB", "+447911123456"),
    ],
)
def test_it_accepts_the_ways_people_write_numbers(raw: str, region: str, expected: str) -> None:
    assert normalize(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "no phone number given"),
        ("   ", "no phone number given"),
        ("12", "wrong number of digits"),
        ("abc", "is not a phone number"),
        ("+1 555 0100 000", "not a valid number"),
        ("555-0100", "not a valid number"),
        ("020 7946 0958", "wrong number of digits"),  # a UK number read as a US one
        ("+1 415 555 0123 4567 89", "wrong number of digits"),
    ],
)
def test_it_refuses_a_number_that_cannot_be_texted(raw: str, reason: str) -> None:
    with pytest.raises(PhoneNumberError, match=reason):
        normalize(raw)


@pytest.mark.parametrize("raw", ["+1 555 0100 000", "555-0100", "020 7946 0958", "12345", "abc"])
def test_the_refusal_does_not_echo_the_whole_number(raw: str) -> None:
    with pytest.raises(PhoneNumberError) as caught:
        normalize(raw)
    message = str(caught.value)
    digits = "".join(c for c in raw if c.isdigit())
    shown = "".join(c for c in message if c.isdigit())
    assert message.strip()
    assert not message.startswith(" ")
    if len(digits) > 4:
        assert digits not in shown
        assert shown.endswith(digits[-4:]) or shown == ""


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+14155550123", "+•••••••0123"),
        ("+442079460958", "+••••••••0958"),
        ("4155550123", "••••••0123"),
        ("12345", "•2345"),
        ("1234", "••••"),
        ("", "(none)"),
        (None, "(none)"),
    ],
)
def test_a_masked_number_shows_at_most_its_last_four_digits(
    phone: str | None, masked: str
) -> None:
    assert mask(phone) == masked


@pytest.mark.parametrize(
    "phone", ["+14155550123", "+442079460958", "+61 491 570 156", "5551234", "12345"]
)
def test_no_more_than_four_digits_of_any_number_survive_masking(phone: str) -> None:
    digits_shown = [c for c in mask(phone) if c.isdigit()]
    assert len(digits_shown) <= 4
    assert "".join(digits_shown) == "".join(c for c in phone if c.isdigit())[-4:]


def test_two_masked_numbers_can_still_be_told_apart() -> None:
    assert mask("+14155550123") != mask("+14155550199")
