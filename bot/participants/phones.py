"""Phone numbers are personal data: normalized to E.164, masked wherever they are logged."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers


class PhoneNumberError(ValueError):
    """A number that cannot be texted."""


def normalize(raw: str, region: str = "US") -> str:
    """E.164 form of `raw`, or PhoneNumberError saying why it is not a usable number."""
    text = (raw or "").strip()
    if not text:
        raise PhoneNumberError("no phone number given")
    return _e164(text, region)


# Every inbound text normalizes its sender's number: the same numbers again and again, each
# parse about a twentieth of the webhook's CPU. A valid number's E.164 form is remembered in
# the process, for the last few thousand numbers seen (an invalid one raises every time).
@lru_cache(maxsize=8192)
def _e164(text: str, region: str) -> str:
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        shown = mask(text) or "that"  # mask() of text with no digits is empty
        raise PhoneNumberError(f"{shown} is not a phone number ({exc._msg})") from None
    if not phonenumbers.is_possible_number(parsed):
        raise PhoneNumberError(f"{mask(text)} has the wrong number of digits")
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneNumberError(f"{mask(text)} is not a valid number in its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask(phone: str | None) -> str:
    """+•••••••1234: the last four digits tell numbers apart in a log; no more is shown."""
    if not phone:
        return "(none)"
    digits = [c for c in phone if c.isdigit()]
    if len(digits) <= 4:
        return "•" * len(digits)
    prefix = "+" if phone.strip().startswith("+") else ""
    return prefix + "•" * (len(digits) - 4) + "".join(digits[-4:])
