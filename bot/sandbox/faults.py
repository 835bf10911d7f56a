"""Injected faults: errors, hangs and failed deliveries the next message creates will meet."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from bot.sandbox.wire import e164

FINAL_FAILURES = ("undelivered", "failed")
MAX_DELAY_SECONDS = 300.0

# Messages Twilio uses for the codes tests inject most; anything else gets a generic one.
KNOWN_MESSAGES = {
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages",
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}
_FIELDS = {"status", "code", "message", "delay", "callback_status", "retry_after"}


class FaultError(ValueError):
    """A fault description the sandbox cannot act on."""


@dataclass(frozen=True)
class Fault:
    """What one message create meets instead of plain success."""

    status: int | None = None  # answer with this HTTP error instead of creating the message
    code: int | None = None
    message: str | None = None
    delay: float = 0.0  # hang this long first (the create then still goes ahead, as on a timeout)
    callback_status: str | None = None  # accept, then report this final status
    retry_after: int | None = None  # seconds, sent as a Retry-After header with an error
    to: str | None = None  # only creates to this number meet it

    @classmethod
    def from_json(cls, item: object, to: str | None = None) -> Fault:
        """Build a fault from its JSON description, or raise FaultError saying what is wrong."""
        if not isinstance(item, dict):
            raise FaultError(f"each fault must be an object, not {item!r}")
        unknown = set(item) - _FIELDS
        if unknown:
            raise FaultError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        status = _optional_int(item, "status")
        code = _optional_int(item, "code")
        delay = item.get("delay", 0.0)
        callback_status = item.get("callback_status")
        retry_after = _optional_int(item, "retry_after")
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            raise FaultError(f"delay must be a number of seconds, not {delay!r}")
        if not 0 <= delay <= MAX_DELAY_SECONDS:
            raise FaultError(f"delay must be between 0 and {MAX_DELAY_SECONDS:g} seconds")
        if status is not None and not 400 <= status <= 599:
            raise FaultError(f"status must be an HTTP error status (400-599), not {status}")
        if callback_status is not None and callback_status not in FINAL_FAILURES:
            raise FaultError(
                f"callback_status must be undelivered or failed, not {callback_status!r}"
            )
        if status is not None and callback_status is not None:
            raise FaultError("a fault either refuses the create (status) or fails the delivery")
        if status is None and callback_status is None and not delay:
            raise FaultError("a fault needs a status, a delay or a callback_status")
        if status is not None and code is None:
            code = 20000 + status  # Twilio's own pattern: 429 -> 20429, 500 -> 20500
        if callback_status is not None and code is None:
            code = 30003 if callback_status == "undelivered" else 30008
        message = item.get("message")
        if message is not None and not isinstance(message, str):
            raise FaultError("message must be text")
        if message is None and code is not None:
            message = KNOWN_MESSAGES.get(code, f"Injected error {code}")
        return cls(
            status=status,
            code=code,
            message=message,
            delay=float(delay),
            callback_status=callback_status,
            retry_after=retry_after,
            to=to,
        )

    def as_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value not in (None, 0.0)}


def _optional_int(item: dict[str, Any], key: str) -> int | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultError(f"{key} must be a whole number, not {value!r}")
    return value


def parse_faults(payload: object) -> list[Fault]:
    """The faults in a `POST /sandbox/faults` body: {"faults": [...], "to": optional number}."""
    if not isinstance(payload, dict) or not isinstance(payload.get("faults"), list):
        raise FaultError('send JSON like {"faults": [{"status": 429, "code": 20429}]}')
    to = payload.get("to")
    if to is not None:
        normalized = e164(to) if isinstance(to, str) else None
        if normalized is None:
            raise FaultError(f"to must be a phone number, not {to!r}")
        to = normalized
    return [Fault.from_json(item, to) for item in payload["faults"]]


class FaultQueue:
    """Faults waiting for creates, first in first out; a fault for one number waits for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()

    def push(self, faults: list[Fault]) -> int:
        """Queue `faults`; return how many are now waiting."""
        with self._lock:
            self._faults.extend(faults)
            return len(self._faults)

    def take(self, to: str) -> Fault | None:
        """The first fault meant for a create to `to`, removed from the queue."""
        with self._lock:
            for fault in self._faults:
                if fault.to is None or fault.to == to:
                    self._faults.remove(fault)
                    return fault
            return None

    def clear(self) -> int:
        """Drop every waiting fault; return how many there were."""
        with self._lock:
            count = len(self._faults)
            self._faults.clear()
            return count

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)
