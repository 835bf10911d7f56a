"""How each setting's text is read: numbers, clocks, URLs, phone numbers, addresses, hours.

Each reader takes the variable's name and its raw value and returns the typed value, or raises
SettingsError with a message that names the variable and how to write it."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from datetime import time
from functools import partial
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from bot.hours import HoursError, WeeklyHours, parse_hours

ENVIRONMENTS = ("development", "production", "test")


class SettingsError(ValueError):
    """Settings the service cannot run with: every problem found, in one message."""

    def __init__(self, problems: str | list[str], *, production: bool = False) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.production = production
        prefix = "production refuses to start: " if production else ""
        super().__init__(prefix + "; ".join(self.problems))


def read_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


def read_int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {value}")
    return value


def read_float(name: str, raw: str, minimum: float = 0.0) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if value <= minimum:
        raise SettingsError(f"{name} must be more than {minimum}, not {value}")
    return value


def read_clock(name: str, raw: str) -> time:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", raw.strip())
    if not match:
        raise SettingsError(f"{name} must be a time like 21:00, not {raw!r}")
    return time(int(match.group(1)), int(match.group(2)))


def read_url(name: str, raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", value):
        raise SettingsError(f"{name} must be an http(s) URL, not {raw!r}")
    return value


def read_phones(name: str, raw: str) -> tuple[str, ...]:
    import phonenumbers

    numbers = [number.strip() for number in raw.split(",") if number.strip()]
    for number in numbers:
        try:
            valid = phonenumbers.is_valid_number(phonenumbers.parse(number))
        except phonenumbers.NumberParseException:
            valid = False
        if not valid or not re.fullmatch(r"\+\d{8,15}", number):
            shown = "•" * max(len(number) - 4, 0) + number[-4:]  # personal data: masked
            raise SettingsError(f"{name} must be E.164 numbers like +14155550123, not {shown}")
    return tuple(numbers)


_ADDRESS = re.compile(r"[^@\s<>,;]+@[^@\s<>,;.]+(\.[^@\s<>,;.]+)*")


def read_emails(name: str, raw: str) -> tuple[str, ...]:
    from email.utils import parseaddr  # "Study team <team@example.org>" is an address too

    addresses = [address.strip() for address in raw.split(",") if address.strip()]
    for address in addresses:
        if not _ADDRESS.fullmatch(parseaddr(address)[1]):
            raise SettingsError(f"{name} must be email addresses like tend@example.org, "
                                f"not {address!r}")
    return tuple(addresses)


def read_secret_url(schemes: tuple[str, ...], example: str, name: str, raw: str) -> str:
    # Never repeated in a refusal: an SMTP URL holds a password, a webhook's path is its secret.
    value = raw.strip()
    try:
        parts = urlsplit(value)
        ok = parts.scheme in schemes and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is no number
        ok = False
    if not ok:
        raise SettingsError(f"{name} must look like {example}")
    return value


read_smtp_url = partial(read_secret_url, ("smtp", "smtps"), "smtp://user:password@host:587 (or smtps://)")
read_webhook_url = partial(read_secret_url, ("http", "https"), "an http(s) URL")


def read_hours(name: str, raw: str) -> WeeklyHours:
    try:
        return parse_hours(raw)
    except HoursError as exc:
        raise SettingsError(f"{name} {exc}") from None


def is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except Exception:
        return False
    return True


def read_environment(raw: str) -> str:
    if raw not in ENVIRONMENTS:
        raise SettingsError(f"TEND_ENV must be development, production or test, not {raw!r}")
    return raw


def is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def environment(environ: Mapping[str, str] | None = None) -> str:
    """TEND_ENV alone (default development), for commands that must know it before the rest."""
    raw = (os.environ if environ is None else environ).get("TEND_ENV")
    return read_environment(raw) if raw else "development"


def read_database_url(raw: str) -> str:
    # Heroku-like hosts hand out postgres://, which SQLAlchemy no longer accepts.
    value = raw.strip()
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value[len(prefix) :]
    return value
