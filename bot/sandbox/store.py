"""The sandbox's messages: an in-memory, thread-safe store, indexed by sid and by phone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.clock import now
from bot.sandbox.wire import API_VERSION, rfc2822

INBOUND = "inbound"
OUTBOUND_API = "outbound-api"
OUTBOUND_REPLY = "outbound-reply"

# Where each status sits in a message's life, so a late or repeated update never moves it back.
_STATUS_RANK = {
    "accepted": 0,
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "receiving": 2,
    "received": 3,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
}


@dataclass
class Message:
    """One text, in either direction, as Twilio would record it."""

    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    direction: str
    status: str
    num_segments: int
    date_created: datetime
    date_updated: datetime
    date_sent: datetime | None
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    error_code: int | None = None
    error_message: str | None = None

    @property
    def phone(self) -> str:
        """The participant's number: the other end from the bot."""
        return self.from_ if self.direction == INBOUND else self.to

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The Message resource exactly as Twilio's REST API renders it."""
        base = self.uri.removesuffix(".json")
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": f"{base}/Media.json",
                "feedback": f"{base}/Feedback.json",
            },
            "to": self.to,
            "uri": self.uri,
        }

    def phone_view(self) -> dict[str, Any]:
        """The message as the phone page shows it (ISO 8601 times, easy for JavaScript)."""
        return {
            "sid": self.sid,
            "direction": self.direction,
            "from": self.from_,
            "to": self.to,
            "body": self.body,
            "status": self.status,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "num_segments": self.num_segments,
            "date_created": self.date_created.isoformat(),
            "date_updated": self.date_updated.isoformat(),
        }


class MessageStore:
    """Every message the sandbox has seen; readers get copies, so they never see a half update."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        self._by_sid: dict[str, Message] = {}
        self._by_phone: dict[str, list[Message]] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def add(self, message: Message) -> Message:
        """Record `message`; return a copy of what was stored."""
        with self._lock:
            self._messages.append(message)
            self._by_sid[message.sid] = message
            self._by_phone.setdefault(message.phone, []).append(message)
            return replace(message)

    def get(self, sid: str) -> Message | None:
        with self._lock:
            message = self._by_sid.get(sid)
            return None if message is None else replace(message)

    def update_status(
        self,
        sid: str,
        status: str,
        *,
        error_code: int | None = None,
        error_message: str | None = None,
    ) -> Message | None:
        """Move a message forward to `status`; an update that would move it back is ignored."""
        with self._lock:
            message = self._by_sid.get(sid)
            if message is None:
                return None
            if _STATUS_RANK.get(status, 0) >= _STATUS_RANK.get(message.status, 0):
                message.status = status
                message.date_updated = now()
                if error_code is not None:
                    message.error_code = error_code
                    message.error_message = error_message
            return replace(message)

    def record_error(self, sid: str, code: int, text: str) -> None:
        """Note an error on a message without changing its status (e.g. a failed webhook)."""
        with self._lock:
            if (message := self._by_sid.get(sid)) is not None:
                message.error_code = code
                message.error_message = text
                message.date_updated = now()

    def newest_first(self, keep: Callable[[Message], bool]) -> list[Message]:
        """Copies of the messages `keep` accepts, newest first as Twilio lists them."""
        with self._lock:
            return [replace(m) for m in reversed(self._messages) if keep(m)]

    def conversation(self, phone: str) -> list[Message]:
        """Both directions of one phone's thread, oldest first."""
        with self._lock:
            return [replace(m) for m in self._by_phone.get(phone, [])]

    def phones(self) -> list[str]:
        """Every phone number with a thread, the most recently active first."""
        with self._lock:
            threads = sorted(
                self._by_phone.items(), key=lambda item: item[1][-1].date_created, reverse=True
            )
            return [phone for phone, _ in threads]
