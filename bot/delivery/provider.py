"""The SMS transport: the real twilio library, pointed at Twilio or at the local sandbox."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bot.clock import as_utc
from bot.delivery.http_client import PooledHttpClient
from bot.settings import Settings

# The library's HTTP clients log every request at INFO: its URL, query (phone numbers, unmasked)
# and headers, eleven lines a message. Ours shows only its warnings; set this logger to INFO to
# see the request log again.
_HTTP_LOG = logging.getLogger("bot.delivery.provider.http")
_HTTP_LOG.setLevel(logging.WARNING)

# Provider answers worth trying again later: rate limits, server errors, carrier congestion.
RETRYABLE_CODES = frozenset({20429, 30003, 30008, 30001, 30002, 20500, 20503})


@dataclass(frozen=True)
class Sent:
    sid: str
    status: str


@dataclass
class SendFailure(Exception):
    """The provider refused or did not answer; `retryable` says whether to try again."""

    code: int | None
    status: int | None
    message: str
    retryable: bool
    ambiguous: bool = False  # it may have been accepted (timeout): reconcile before resending

    def __str__(self) -> str:
        return f"{self.code or self.status}: {self.message}"


def classify_exception(exc: Exception) -> SendFailure:
    if isinstance(exc, TwilioRestException):
        code = exc.code if isinstance(exc.code, int) else None
        status = exc.status
        retryable = (status is not None and (status == 429 or status >= 500)) or (
            code in RETRYABLE_CODES
        )
        return SendFailure(code, status, str(exc.msg)[:300], retryable)
    # Connection reset, timeout: the request may or may not have reached the provider.
    return SendFailure(None, None, f"{type(exc).__name__}: {exc}"[:300], True, ambiguous=True)


class SmsSender:
    """One twilio Client with a keep-alive connection pool, shared by a worker's sending
    threads."""

    def __init__(self, settings: Settings, *, pool_size: int | None = None, timeout: float = 10.0):
        self.settings = settings
        http = PooledHttpClient(
            settings.twilio_api_base_url, size=pool_size or settings.send_concurrency,
            timeout=timeout, logger=_HTTP_LOG,
        )
        self.client = Client(
            settings.twilio_account_sid, settings.twilio_auth_token, http_client=http
        )
        # Everything else about the library stays real; only where it sends changes.
        self.client.api.base_url = settings.twilio_api_base_url

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> Sent:
        """Hand one message to the provider; raises SendFailure."""
        kwargs: dict[str, str] = {"to": to, "body": body}
        if self.settings.twilio_messaging_service_sid:
            kwargs["messaging_service_sid"] = self.settings.twilio_messaging_service_sid
        else:
            kwargs["from_"] = self.settings.twilio_from_number
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self.client.messages.create(**kwargs)
        except Exception as exc:
            raise classify_exception(exc) from exc
        return Sent(sid=str(message.sid), status=str(message.status))

    def sent_to(self, *, to: str, since: datetime) -> list[tuple[str, str, datetime | None]]:
        """(sid, body, date_created) of messages the provider holds for `to` since `since`."""
        day = as_utc(since) - timedelta(days=1)  # DateSent filters by day: widen, then compare
        found = []
        for message in self.client.messages.stream(to=to, date_sent_after=day, page_size=100):
            created = message.date_created
            if created is not None and as_utc(created) < as_utc(since) - timedelta(minutes=2):
                continue
            found.append((str(message.sid), str(message.body or ""), created))
        return found
