"""`bot simulate` (the default): the bot's own domain and SQL code, called in this process.

The same functions as in a deployment take each step, in the order a deployment runs them:
the webhook's inbound handling (`handle_inbound`), the dispatcher's claims of due deliveries
and due hub evaluations, the worker's batch sender (decisions, rendering, the send gate before
every provider call, the sids stored) and its hub evaluations, and the status-callback
handling (`record_status`). What is left out is only transport: no HTTP server, no signature
to check, no RQ queue on Redis (a claimed batch is sent at once, as the worker's job would send
it), and the twilio client's `messages` is replaced by a recorder that accepts each message
with a sid, as the sandbox does, and reports it sent and then delivered.

Nothing can be lost between claim and send here, so the dispatcher's rounds for lost jobs and
stale sends never have work, and callbacks never arrive before their sid is stored; those
rounds are left out.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from twilio.base.exceptions import TwilioRestException

from bot.care import hub
from bot.care.programs import Catalog, live_programs
from bot.clock import as_utc, now
from bot.conversation.inbound import InboundError, handle_inbound
from bot.delivery import outbox
from bot.delivery.provider import SmsSender
from bot.delivery.sending import BatchSender
from bot.delivery.status import record_status
from bot.settings import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, SANDBOX_FROM_NUMBER, Settings
from bot.store.db import get_engine, session_scope
from bot.tools.simulate.journey import TextFailed
from bot.tools.simulate.plan import Part, real_seconds

log = logging.getLogger(__name__)

JOB_SIZE = 50  # deliveries per batch, as the dispatcher puts them in one job
MAX_BODY_CHARACTERS = 1600  # what Twilio accepts in one create
# The statuses an accepted message reports, in order, as the sandbox's carrier reports them.
DELIVERY_STEPS = ("sent", "delivered")
# The parts of the bot's work, as `parts` names them.
TEXTS, CLAIMS, SENDING, CALLBACKS, HUB = (
    "texts (webhook handling)", "dispatcher claims", "sending (decide, render, gate, sids)",
    "status callbacks", "hub evaluations",
)


@dataclass(frozen=True)
class Recorded:
    """One message the recorder accepted, as the provider's message log holds it."""

    sid: str
    to: str
    body: str
    date_created: datetime
    status_callback: str | None
    status: str = "queued"


class RecordedMessages:
    """Stands where `twilio.rest.Client(...).messages` stands: `create` accepts a message and
    returns its sid, `stream` lists what was sent to a number (for reconciling)."""

    def __init__(self, sids: Iterator[str]) -> None:
        self._sids = sids
        self.log: list[Recorded] = []
        self.unreported: list[Recorded] = []  # accepted, status callbacks still to come

    def create(self, *, to: str, body: str, status_callback: str | None = None,
               **sender: str) -> Recorded:
        if not body:
            raise TwilioRestException(400, "Messages.json", "Message body is required.", 21602)
        if len(body) > MAX_BODY_CHARACTERS:
            raise TwilioRestException(
                400, "Messages.json",
                "The concatenated message body exceeds the 1600 character limit.", 21617,
            )
        message = Recorded(next(self._sids), to, body, now(), status_callback,
                           "accepted" if sender.get("messaging_service_sid") else "queued")
        self.log.append(message)
        if status_callback:
            self.unreported.append(message)
        return message

    def stream(self, *, to: str, date_sent_after: datetime, page_size: int = 50,
               **_: Any) -> list[Recorded]:
        return [
            m for m in reversed(self.log)
            if m.to == to and as_utc(m.date_created) >= as_utc(date_sent_after)
        ]

    def take_unreported(self) -> list[Recorded]:
        taken, self.unreported = self.unreported, []
        return taken


class RecordingClient:
    """The twilio client, as far as the sender uses it: its `messages`."""

    def __init__(self, sids: Iterator[str]) -> None:
        self.messages = RecordedMessages(sids)


def _sids() -> Iterator[str]:
    """Sids like Twilio's (SM and 32 hex digits), numbered, so a seed gives the same ones."""
    return (f"SM{n:032x}" for n in itertools.count(1))


class InProcessStack:
    """The bot's domain code on the database of `base`, with the recorder as its provider."""

    texting_threads = 1

    def __init__(self, base: Settings) -> None:
        self.errors: list[str] = []
        self.parts: dict[str, Part] = {}
        self._part: Part | None = None  # the part being timed, whose statements are counted
        self.settings = base.with_overrides(
            env="test" if base.env == "test" else "development",
            twilio_account_sid=SANDBOX_ACCOUNT_SID,
            twilio_auth_token=SANDBOX_AUTH_TOKEN,
            twilio_from_number=SANDBOX_FROM_NUMBER,
            twilio_messaging_service_sid="",
            send_rate_per_second=1_000_000.0,
        )
        self.engine: Engine = get_engine(self.settings.database_url)
        # The content does not change while a simulation runs: read it once.
        self.programs: Catalog = live_programs(self.settings.narratives_dir)
        self._sids = _sids()
        sender = SmsSender(self.settings)
        self.client = RecordingClient(self._sids)
        sender.client = self.client  # type: ignore[assignment]
        # Sends one after another: the carrier's rate is lifted, so there is no slot to wait
        # for (no limiter), and a pool of threads would only take turns.
        self.batch_sender = BatchSender(
            engine=self.engine, settings=self.settings.with_overrides(send_concurrency=1),
            sender=sender, limiter=None, programs=self.programs,
        )
        event.listen(self.engine, "after_cursor_execute", self._counted)

    def _counted(self, *_: object) -> None:
        if self._part is not None:
            self._part.statements += 1

    @contextmanager
    def _timed(self, name: str) -> Iterator[None]:
        """Count the wall time and the statements of one part of the bot's work."""
        part = self.parts.setdefault(name, Part())
        self._part, started = part, real_seconds()
        try:
            yield
        finally:
            part.seconds += real_seconds() - started
            part.calls += 1
            self._part = None

    def text(self, phone: str, body: str) -> list[str]:
        """One text from the phone, handled as the webhook handles it; its TwiML replies."""
        form = inbound_form(next(self._sids), phone, self.settings.twilio_from_number, body)
        try:
            with self._timed(TEXTS), session_scope(self.engine) as session:
                result = handle_inbound(
                    session=session, settings=self.settings, programs=self._catalog, form=form
                )
        except InboundError as exc:
            raise TextFailed(f"the bot refused it: {exc}") from None
        except Exception as exc:  # the webhook would have answered 500
            log.exception("inbound text failed")
            raise TextFailed(f"the bot failed: {type(exc).__name__}: {exc}") from None
        # As TwiML carries them: each reply's text trimmed, an empty one not sent.
        return [reply.strip() for reply in result.replies if reply.strip()]

    def _catalog(self) -> Catalog:
        return self.programs

    def work(self) -> bool:
        """The dispatcher's claims, then each claimed batch sent and each evaluation made, in
        the order a worker takes its jobs; status callbacks after each batch. True when a
        message was delivered."""
        limit = self.settings.dispatch_batch_size
        due: list[int] = []
        with self._timed(CLAIMS):
            while True:
                claimed = outbox.claim_due(engine=self.engine, limit=limit)
                due += claimed
                if len(claimed) < limit:
                    break
            evaluations = hub.claim_due(engine=self.engine, limit=limit)
        delivered = 0
        for batch in _chunks(due):
            with self._timed(SENDING):
                self._job(f"sending {len(batch)}",
                          lambda ids=batch: self.batch_sender.send_batch(ids))
            with self._timed(CALLBACKS):
                delivered += self._report_statuses()
        for batch in _chunks(evaluations):
            with self._timed(HUB):
                self._job(f"evaluating {len(batch)}", lambda ids=batch: self._evaluate(ids))
        return delivered > 0

    def _evaluate(self, participant_ids: list[int]) -> None:
        for participant_id in participant_ids:
            hub.evaluate_participant(
                engine=self.engine, programs=self.programs, participant_id=participant_id
            )

    def _job(self, what: str, run: Callable[[], object]) -> None:
        """Run one job's work; a failure is reported once, as a failed job would be."""
        try:
            run()
        except Exception as exc:
            log.exception("%s failed", what)
            message = f"{what} failed: {type(exc).__name__}: {exc}"
            if message not in self.errors:
                self.errors.append(message)

    def _report_statuses(self) -> int:
        """The status callbacks of the messages just accepted, through the webhook's handling:
        each message's in order, as the provider posts them; how many were delivered."""
        accepted = self.client.messages.take_unreported()
        if not accepted:
            return 0
        with session_scope(self.engine) as session:
            for message in accepted:
                for status in DELIVERY_STEPS:
                    record_status(
                        session=session, message_sid=message.sid, provider_status=status,
                        error_code=None, max_attempts=self.settings.max_send_attempts,
                    )
        return len(accepted)

    def close(self) -> None:
        event.remove(self.engine, "after_cursor_execute", self._counted)


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), JOB_SIZE):
        yield ids[start : start + JOB_SIZE]


def inbound_form(sid: str, phone: str, to: str, body: str) -> dict[str, str]:
    """The parameters of Twilio's webhook for an incoming SMS that the bot reads."""
    return {
        "MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": SANDBOX_ACCOUNT_SID,
        "From": phone, "To": to, "Body": body, "NumMedia": "0", "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
