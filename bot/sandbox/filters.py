"""The list filters To, From, DateSent, DateSent< and DateSent>, read as Twilio reads them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from werkzeug.datastructures import MultiDict

from bot.sandbox.store import Message
from bot.sandbox.wire import e164

LIST_FILTERS = ("To", "From", "DateSent", "DateSent<", "DateSent>")


def bounded_int(args: MultiDict[str, str], name: str, default: int, low: int, high: int) -> int:
    """The whole number in `args[name]`, or ValueError saying why it will not do."""
    raw = args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _moment(name: str, raw: str) -> date | datetime:
    """A DateSent filter value: YYYY-MM-DD, or a full ISO 8601 time as the library sends."""
    text = raw.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"Invalid {name}: {raw!r} is not a date like 2024-05-31") from None
    if moment.tzinfo is None:
        raise ValueError(f"Invalid {name}: {raw!r} has no time zone")
    return moment


def message_filter(account_sid: str, args: MultiDict[str, str]) -> Callable[[Message], bool]:
    """A predicate for the list filters in `args` (To, From, DateSent, DateSent<, DateSent>)."""
    to = (e164(args["To"]) or args["To"]) if "To" in args else None
    sender = (e164(args["From"]) or args["From"]) if "From" in args else None
    on = _moment("DateSent", args["DateSent"]) if "DateSent" in args else None
    before = _moment("DateSent<", args["DateSent<"]) if "DateSent<" in args else None
    after = _moment("DateSent>", args["DateSent>"]) if "DateSent>" in args else None

    def keep(m: Message) -> bool:
        if m.account_sid != account_sid or (to is not None and m.to != to):
            return False
        if sender is not None and m.from_ != sender:
            return False
        if on is None and before is None and after is None:
            return True
        if m.date_sent is None:
            return False
        # Twilio compares to the second, and the bounds include their own day or second.
        sent = m.date_sent.replace(microsecond=0)
        if on is not None and sent.date() != (on.date() if isinstance(on, datetime) else on):
            return False
        if before is not None and not _on_or_before(sent, before):
            return False
        return after is None or _on_or_before(after, sent)

    return keep


def _on_or_before(first: date | datetime, second: date | datetime) -> bool:
    if isinstance(first, datetime) and isinstance(second, datetime):
        return first <= second
    as_day = [m.date() if isinstance(m, datetime) else m for m in (first, second)]
    return as_day[0] <= as_day[1]
