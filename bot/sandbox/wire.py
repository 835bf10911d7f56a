"""Twilio's wire format: sids, dates, error bodies, segment counts and phone-number checks."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache

import phonenumbers
from flask import Response, jsonify

API_VERSION = "2010-04-01"
MAX_BODY_CHARACTERS = 1600

# Twilio's documented test numbers: sending to them fails the way a real number would.
MAGIC_TO_ERRORS: dict[str, tuple[int, str]] = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
MAGIC_FROM_ERRORS: dict[str, tuple[int, str]] = {
    "+15005550001": (21212, "The 'From' number +15005550001 is not a valid phone number."),
    "+15005550007": (
        21606,
        "The 'From' phone number provided is not a valid, "
        "message-capable Twilio phone number for this destination/account.",
    ),
    "+15005550008": (
        21611,
        "This 'From' number has exceeded the maximum number of queued messages",
    ),
}

# The sandbox stands in for an outside service, so it counts segments the way the carrier does
# (on the raw body) instead of borrowing the bot's own encoder, which normalizes first.
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")
_MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-f]{32}")


def new_sid(prefix: str = "SM") -> str:
    """A fresh sid like Twilio's: two letters and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(moment: datetime | None) -> str | None:
    """Twilio's date format in resources, e.g. 'Thu, 30 Jul 2015 20:12:31 +0000'."""
    return None if moment is None else format_datetime(moment)


def count_segments(body: str) -> int:
    """How many SMS segments `body` takes: GSM-7 160/153 per segment, UCS-2 70/67."""
    if all(c in _GSM7 or c in _GSM7_EXTENDED for c in body):
        units = sum(2 if c in _GSM7_EXTENDED else 1 for c in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else -(-units // multi)


@lru_cache(maxsize=4096)  # every create parses the same few numbers again
def e164(raw: str) -> str | None:
    """`raw` as E.164 if it could be a phone number (US assumed without a +), else None."""
    try:
        parsed = phonenumbers.parse(raw.strip(), "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_messaging_service_sid(raw: str) -> bool:
    """Whether `raw` looks like a Messaging Service sid."""
    return bool(_MESSAGING_SERVICE_SID.fullmatch(raw))


def error_response(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """An error in Twilio's JSON shape, which the twilio library turns into TwilioRestException."""
    response = jsonify(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
    )
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
