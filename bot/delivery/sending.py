"""Sending a batch of claimed deliveries: check, render at send time, call the provider.

Each row is moved from queued to sending (body stored) in SQL before the provider is called,
and its sid is stored right after; a crash between the two is reconciled against the
provider's message log, never blindly re-sent.

A batch costs a few statements (claim, texts, sids) plus, per message, the send gate: one
conditional statement in a transaction held through the provider call (bot.delivery.gate), on
a connection each sending thread keeps for the batch. The batch reserves its rate slots in one
Redis call per two seconds of sends (one call at high rates), and every provider call goes over
a kept-alive connection (bot.delivery.http_client). A worker told to stop ends the batch before
its next provider call and puts the rows it never handed over back in the outbox
(bot.delivery.stopping).
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from bot.care.context import answers_of, message_context
from bot.care.narrative import NarrativeError, render
from bot.care.programs import Program
from bot.clock import now
from bot.delivery import claim
from bot.delivery.cap import _allowed_at, _DayCounts
from bot.delivery.claim import BatchOutcome
from bot.delivery.encoding import MAX_CHARACTERS, encode
from bot.delivery.gate import HEARTBEAT_EVERY, beat, durable, gate, gate_engine
from bot.delivery.provider import SendFailure, SmsSender
from bot.delivery.ratelimit import Pacer, RateLimiter
from bot.delivery.reconcile import reconcile
from bot.delivery.record import Rendered, record_failure, record_sent_many, store_rendered
from bot.delivery.stopping import Turns, release_unsent
from bot.settings import Settings
from bot.store.db import session_scope
from bot.store.models import Delivery, Participant

log = logging.getLogger(__name__)

# A sending thread gives its connection back while it waits longer than this for a rate slot.
HOLD_CONNECTION_FOR = timedelta(seconds=1)


def status_callback_url(settings: Settings) -> str:
    return f"{settings.public_base_url}/twilio/status"


def _prepare(
    *,
    session: Session,
    settings: Settings,
    programs: dict[str, Program],
    ids: list[int],
    token: str,
    outcome: BatchOutcome,
    worker_id: str | None = None,
) -> list[tuple[Delivery, Participant]]:
    """Check each queued row and claim the sendable ones; returns them, with no body yet
    where a template is still to be rendered (`render_claimed`)."""
    moment = now()
    if worker_id is not None:
        beat(session, worker_id, moment)
    rows = claim.lock_rows(session, ids)
    outcome.skipped.extend(set(ids) - {d.id for d, _ in rows})
    # One query for the daily cap of the whole batch, not one per row.
    counts = _DayCounts(
        session,
        {
            participant.id
            for _, participant in rows
            if participant.id is not None and participant.receives_automated_content
        },
        moment,
    )
    claimed: list[tuple[Delivery, Participant]] = []
    for delivery, participant in rows:
        program = programs.get(participant.program)
        if claim.settle_unsendable(
            session=session, settings=settings, programs=programs, delivery=delivery,
            participant=participant, moment=moment, outcome=outcome,
        ):
            continue
        # A person's text goes now: they confirmed it inside quiet hours; the cap is automated.
        allowed = moment if delivery.staff_id is not None else _allowed_at(
            session=session, settings=settings, participant=participant, program=program,
            moment=moment, counts=counts,
        )
        if allowed > moment:
            claim.defer(delivery, allowed, outcome)
            continue
        if delivery.body is None and program is not None and not claim.apply_decision(
            session=session, program=program, delivery=delivery, participant=participant,
            moment=moment, outcome=outcome,
        ):
            continue
        counts.claim(participant.id or 0)
        # A template is rendered after this transaction commits (`render_claimed`): a slow or
        # runaway template never holds these row locks.
        claimed.append((delivery, participant))
    for delivery, _ in rows:
        session.add(delivery)
    claim.mark_sending(
        session, [delivery for delivery, _ in claimed], moment=moment, token=token,
        worker_id=worker_id,
    )
    return claimed


def _render_one(session: Session, program: Program | None, delivery: Delivery,
                participant: Participant, answers: list) -> Rendered:
    """The row's text, encoded, with the program version; or why it cannot be sent."""
    try:
        if program is None:
            raise NarrativeError(f"program {participant.program!r} no longer exists")
        text = render(
            program,
            delivery.template or "",
            message_context(
                session=session, participant=participant, program=program, delivery=delivery,
                answers=answers,
            ),
        )
        encoded = encode(text)
        if not encoded.body.strip():
            raise NarrativeError(f"{program.name}/{delivery.template}: rendered empty")
        if encoded.characters > MAX_CHARACTERS:
            raise NarrativeError(
                f"{program.name}/{delivery.template}: {encoded.characters} characters, "
                f"more than the {MAX_CHARACTERS} a text can carry"
            )
    except NarrativeError as exc:
        log.error("delivery %s not rendered: %s", delivery.id, exc)
        return str(exc)[:500]
    return encoded.body, encoded.segments, encoded.encoding, program.version


def render_claimed(
    *, engine: Engine, programs: dict[str, Program], rows: list[tuple[Delivery, Participant]],
    token: str, outcome: BatchOutcome,
) -> dict[int, str]:
    """Render the claimed rows that have a template and no text yet (as the claim left them),
    outside any transaction that holds locks, then store the texts (or the failures) under our
    claim; returns the texts {id: body} ready to send.

    Rendering is bounded in time and size (bot.care.narrative). A crash in between leaves the row in
    sending with no text, which reconcile finds missing at the provider and sends again.
    """
    if not rows:
        return {}
    rendered: dict[int, Rendered] = {}
    with Session(engine, expire_on_commit=False) as session:
        # One query for the answers templates may quote, not one per row.
        answers = answers_of(session, {p.id for _, p in rows if p.id is not None})
        for delivery, participant in rows:
            rendered[delivery.id or 0] = _render_one(
                session, programs.get(participant.program), delivery, participant,
                answers.get(participant.id or 0, []),
            )
        session.rollback()  # nothing was written: end the read
    with session_scope(engine) as session:
        return store_rendered(
            session=session, token=token, rendered=rendered, failed=outcome.failed
        )


class BatchSender:
    """Sends claimed deliveries through one pooled client, several at a time."""

    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        sender: SmsSender,
        limiter: RateLimiter | Pacer | None,
        programs: dict[str, Program],
        stopping: threading.Event | None = None,
    ):
        self.engine, self.settings, self.sender = engine, settings, sender
        self.limiter, self.programs = limiter, programs
        self.pool = ThreadPoolExecutor(max_workers=settings.send_concurrency)
        self.gates = gate_engine(engine, settings.send_concurrency)
        # Rows this worker leaves in sending carry its id; once its heartbeat stops they are
        # reconciled at once rather than after the claim timeout.
        self.worker_id = uuid.uuid4().hex
        self._last_beat = datetime.min.replace(tzinfo=UTC)
        # Set when the process is told to stop: the batch ends before its next provider call.
        self.stopping = stopping or threading.Event()

    def send_batch(self, ids: list[int]) -> BatchOutcome:
        outcome = BatchOutcome()
        token = uuid.uuid4().hex
        with session_scope(self.engine) as session:
            prepared = _prepare(
                session=session, settings=self.settings, programs=self.programs, ids=ids,
                token=token, outcome=outcome, worker_id=self.worker_id,
            )
        self._last_beat = now()
        ready = [(d.id or 0, p.phone, d.body) for d, p in prepared if d.body is not None]
        phones = {d.id or 0: p.phone for d, p in prepared}
        texts = render_claimed(
            engine=self.engine, programs=self.programs,
            rows=[(d, p) for d, p in prepared if d.body is None], token=token, outcome=outcome,
        )
        ready += [(delivery_id, phones[delivery_id], body) for delivery_id, body in texts.items()]
        # The claims are committed: from here a crash leaves rows in sending, to be reconciled.
        results, unsent, error = self._send_all(ready, token)
        sids: dict[int, str] = {}
        for delivery_id, result, sid in results:
            getattr(outcome, result).append(delivery_id)
            if sid is not None:
                sids[delivery_id] = sid
        # The sids of the whole batch in one transaction, as soon as its sends are done: a
        # crash before this commits leaves the rows in sending, and reconcile finds them in the
        # provider's log as it would after a crash right after a single send. Rows a stop left
        # unsent go back to the outbox in the same transaction, due now.
        if sids or unsent:
            with session_scope(self.engine) as session:
                if sids:
                    record_sent_many(session=session, sids=sids, token=token)
                outcome.released = release_unsent(session=session, ids=unsent, token=token)
        if outcome.released:
            log.info("stopping: %d claimed messages back to the outbox", len(outcome.released))
        if error is not None:
            raise error
        return outcome

    def _send_all(
        self, ready: list[tuple[int, str, str]], token: str
    ) -> tuple[list[tuple[int, str, str | None]], list[int], BaseException | None]:
        """Send every row, `send_concurrency` at a time; returns (id, outcome, sid) in the
        order of `ready`, the ids never handed to the provider (a stop came first), and the
        first unexpected error (the other rows are still sent)."""
        if not ready:
            return [], [], None
        turns = Turns(self.limiter, len(ready), self.stopping)
        pending: queue.SimpleQueue[tuple[int, tuple[int, str, str]]] = queue.SimpleQueue()
        for place, item in enumerate(ready):
            pending.put((place, item))
        unsent: list[int] = []
        lanes = [
            self.pool.submit(self._lane, pending, token, turns, unsent)
            for _ in range(min(self.settings.send_concurrency, len(ready)))
        ]
        results: list[tuple[int, tuple[int, str, str | None]]] = []
        error: BaseException | None = None
        for lane in lanes:
            try:
                done, failure = lane.result()
            except BaseException as exc:  # the others' sids are still stored, then it is raised
                error = error or exc
                continue
            results += done
            error = error or failure
        # What no lane took was never handed over, whether a stop or an error ended the lanes.
        while not pending.empty():
            unsent.append(pending.get_nowait()[1][0])
        return [result for _, result in sorted(results)], sorted(unsent), error

    def _lane(
        self, pending: queue.SimpleQueue, token: str, turns: Turns, unsent: list[int]
    ) -> tuple[list[tuple[int, tuple[int, str, str | None]]], Exception | None]:
        """One sending thread: take rows until none are left or a stop comes, on one database
        connection; a row taken when the stop comes goes to `unsent`."""
        done: list[tuple[int, tuple[int, str, str | None]]] = []
        error: Exception | None = None
        connection: Connection | None = None

        def idle() -> None:  # a long wait for a rate slot holds no connection
            nonlocal connection
            if connection is not None:
                connection.close()
                connection = None

        try:
            while True:
                try:
                    place, item = pending.get_nowait()
                except queue.Empty:
                    break
                if not turns.take(idle, HOLD_CONNECTION_FOR):
                    unsent.append(item[0])  # list.append is atomic: lanes share it
                    break
                connection = connection or self.gates.connect()
                try:
                    done.append((place, self._send_one(connection, item, token)))
                except Exception as exc:  # this row stays in sending, to be reconciled
                    error = error or exc
                    connection.close()
                    connection = None  # the next row gets a fresh connection
        finally:
            if connection is not None:
                connection.close()
        return done, error

    def _send_one(
        self, connection: Connection, item: tuple[int, str, str], token: str
    ) -> tuple[int, str, str | None]:
        """Call the provider for one claimed row, through the send gate; returns
        (id, outcome, sid if accepted)."""
        delivery_id, to, body = item
        # The gate's transaction stays open through the provider call (see `gate`).
        with connection.begin():
            moment = now()
            if moment - self._last_beat >= HEARTBEAT_EVERY:
                self._last_beat = moment
                beat(connection, self.worker_id, moment)
            verdict = gate(
                connection=connection, settings=self.settings, delivery_id=delivery_id,
                token=token,
            )
            if verdict != "send":
                return delivery_id, verdict, None
            try:
                sent = self.sender.send(
                    to=to, body=body, status_callback=status_callback_url(self.settings)
                )
            except SendFailure as failure:
                if failure.ambiguous:
                    # It may have gone out: leave it in sending for the reconciler to look up.
                    log.warning("delivery %s: %s; will reconcile", delivery_id, failure)
                    return delivery_id, "retried", None
                # In the gate's transaction: the Session writes on it and leaves the commit,
                # which is durable (a retry's backoff, a failure, an opt-out are kept).
                durable(connection)
                with Session(bind=connection) as session:
                    result = record_failure(
                        session=session, settings=self.settings, delivery_id=delivery_id,
                        failure=failure,
                    )
                    session.commit()
                log.info("delivery %s: provider said %s; %s", delivery_id, failure, result)
                return delivery_id, result, None
        return delivery_id, "sent", sent.sid

    def reconcile(self, delivery_id: int) -> str:
        """Settle a row left in sending: find it in the provider's log, or send it again once."""
        return reconcile(engine=self.engine, sender=self.sender, delivery_id=delivery_id)
