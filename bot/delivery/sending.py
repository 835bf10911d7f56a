"""Sending a batch of claimed deliveries: check, render at send time, call the provider.

Each row is moved from queued to sending (body stored) in SQL before the provider is called,
and its sid is stored right after; a crash between the two is reconciled against the
provider's message log, never blindly re-sent.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import and_, case, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select, update

from bot.care import hub
from bot.care.context import answers_of, message_context
from bot.care.decisions import decide
from bot.care.narrative import NarrativeError, render
from bot.care.programs import UNAVAILABLE_RETRY, Program, unavailable_alert, unavailable_reason
from bot.care.timing import local_day_bounds, local_moment, next_allowed, zone
from bot.clock import now
from bot.delivery import status as delivery_status
from bot.delivery.encoding import MAX_CHARACTERS, encode
from bot.delivery.outbox import backoff
from bot.delivery.provider import SendFailure, SmsSender
from bot.delivery.ratelimit import RateLimiter
from bot.people import alerts
from bot.settings import Settings
from bot.store.db import insert, session_scope
from bot.store.models import (
    Delivery,
    DeliveryStatus,
    Participant,
    UnmatchedStatus,
    WorkerHeartbeat,
)

log = logging.getLogger(__name__)

# What the daily cap counts: every message the program sends on its own. Replies to a text
# (HELP, a CHECKIN's state question) are answers the participant asked for and do not count.
AUTOMATED_KINDS = ("welcome", "event", "narrative", "reminder", "state", "finished")
NOT_RECEIVED = (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED)


@dataclass
class BatchOutcome:
    sent: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # gone, or already taken by someone else


def status_callback_url(settings: Settings) -> str:
    return f"{settings.public_base_url}/twilio/status"


def _limits(settings: Settings, program: Program | None) -> tuple[time, time, int]:
    """Quiet hours (start, end) and the daily cap that apply to a program's participants."""
    start, end = (program.quiet_hours if program and program.quiet_hours else None) or (
        settings.quiet_hours_start,
        settings.quiet_hours_end,
    )
    cap = (program.daily_cap if program else None) or settings.daily_message_cap
    return start, end, cap


CAP_LOOKAHEAD = timedelta(days=15)  # _allowed_at looks at most a fortnight ahead


def _counts_against_cap(
    status: str, sent_at: datetime | None, started_at: datetime | None,
    day_start: datetime, day_end: datetime,
) -> bool:
    """What counts against a day's cap: what reached the provider that day, plus what is on its
    way there now (claimed by this batch or another worker); a message the carrier could not
    deliver never interrupted anyone, so its retry is not counted twice."""
    if sent_at is not None and day_start <= sent_at < day_end:
        return status not in NOT_RECEIVED
    return (
        status == DeliveryStatus.SENDING
        and started_at is not None
        and day_start <= started_at < day_end
    )


class _DayCounts:
    """The automated messages of a batch's participants around its days, read in one query
    before the batch changes anything, then counted in Python.

    The rows the batch moves to sending are added as they are claimed, so the cap holds within
    a batch.
    """

    def __init__(self, session: Session, participant_ids: set[int], moment: datetime):
        self.moment = moment
        self.claimed: dict[int, int] = defaultdict(int)
        self.stamps: dict[int, list[tuple[str, datetime | None, datetime | None]]] = (
            defaultdict(list)
        )
        if not participant_ids:
            return
        # Local days start up to 14 hours before UTC's; a day back covers every zone.
        low, high = moment - timedelta(days=1), moment + CAP_LOOKAHEAD
        found = session.exec(
            select(
                Delivery.participant_id, Delivery.status, Delivery.sent_at,
                Delivery.send_started_at,
            ).where(
                col(Delivery.participant_id).in_(participant_ids),
                col(Delivery.kind).in_(AUTOMATED_KINDS),
                or_(col(Delivery.via) == "api", col(Delivery.kind) == "welcome"),
                or_(
                    and_(col(Delivery.sent_at) >= low, col(Delivery.sent_at) < high),
                    and_(
                        col(Delivery.send_started_at) >= low,
                        col(Delivery.send_started_at) < high,
                    ),
                ),
            )
        ).all()
        for participant_id, status, sent_at, started_at in found:
            self.stamps[participant_id].append((status, sent_at, started_at))

    def count(self, participant_id: int, day_start: datetime, day_end: datetime) -> int:
        total = sum(
            _counts_against_cap(status, sent_at, started_at, day_start, day_end)
            for status, sent_at, started_at in self.stamps.get(participant_id, ())
        )
        if day_start <= self.moment < day_end:
            total += self.claimed[participant_id]
        return total

    def claim(self, participant_id: int) -> None:
        """A row of this participant moved to sending at `moment`."""
        self.claimed[participant_id] += 1


def _allowed_at(
    *, session: Session, settings: Settings, participant: Participant, program: Program | None,
    moment: datetime, counts: _DayCounts | None = None,
) -> datetime:
    """The earliest moment at or after `moment` outside quiet hours and under the daily cap."""
    assert participant.id is not None
    counts = counts or _DayCounts(session, {participant.id}, moment)
    tz = zone(participant.timezone)
    start, end, cap = _limits(settings, program)
    candidate = next_allowed(moment, tz, start, end)
    for _ in range(14):  # a fortnight of full days would mean something else is wrong
        day_start, day_end = local_day_bounds(candidate, tz)
        if counts.count(participant.id, day_start, day_end) < cap:
            return candidate
        tomorrow = candidate.astimezone(tz).date() + timedelta(days=1)
        candidate = next_allowed(local_moment(tomorrow, end, tz), tz, start, end)
    return candidate


def _prepare(
    *,
    session: Session,
    settings: Settings,
    programs: dict[str, Program],
    ids: list[int],
    token: str,
    outcome: BatchOutcome,
    worker_id: str | None = None,
) -> list[tuple[int, str, str | None]]:
    """Check each queued row and claim the sendable ones; returns (id, to, body), body None
    where a template is still to be rendered (`render_claimed`)."""
    moment = now()
    if worker_id is not None:
        beat(session, worker_id, moment)
    if session.get_bind().dialect.name == "postgresql":
        # The batch's participants first, in id order: a second worker with rows of the same
        # participant waits here, then counts this batch's claims against the daily cap.
        # (Participant before delivery is the order inbound handling takes them in too.)
        whose = select(Delivery.participant_id).where(col(Delivery.id).in_(ids))
        session.exec(
            select(Participant.id).where(col(Participant.id).in_(whose))
            .order_by(col(Participant.id)).with_for_update()
        ).all()
    # The same ids can be on the queue twice (a job presumed lost was queued again): lock the
    # rows so a second worker skips them instead of reading "queued" and sending them again.
    rows = session.exec(
        select(Delivery, Participant)
        .join(Participant, col(Participant.id) == col(Delivery.participant_id))
        .where(col(Delivery.id).in_(ids), Delivery.status == DeliveryStatus.QUEUED)
        .with_for_update(skip_locked=True, of=Delivery)
    ).all()
    outcome.skipped.extend(set(ids) - {d.id for d, _ in rows})
    # One query each for the daily cap and for the answers templates may quote, not one per row.
    counts = _DayCounts(
        session,
        {
            participant.id
            for _, participant in rows
            if participant.id is not None and participant.receives_automated_content
        },
        moment,
    )
    ready: list[tuple[int, str, str | None]] = []
    for delivery, participant in rows:
        program = programs.get(participant.program)
        if not participant.receives_automated_content:
            reason = "opted out" if participant.opted_out_at else (
                "paused" if participant.paused_at else "unreachable"
            )
            delivery.status, delivery.final_at = DeliveryStatus.CANCELLED, moment
            delivery.error_message = f"not sent: participant {reason}"
            outcome.cancelled.append(delivery.id)
            continue
        if delivery.attempts >= settings.max_send_attempts:
            # Crashed sends that never reached the provider, or carrier retries: bounded too.
            delivery.status, delivery.final_at = DeliveryStatus.FAILED, moment
            delivery.error_message = f"not sent: gave up after {delivery.attempts} attempts"
            outcome.failed.append(delivery.id)
            delivery_status.record_event(
                session=session, delivery_id=delivery.id, status=DeliveryStatus.FAILED,
                error_code=delivery.error_code,
            )
            continue
        if program is None and delivery.body is None:
            name = participant.program
            reason = unavailable_reason(programs, name)
            if reason is not None:
                # Never dropped for a coordinator's broken file: it waits, and they are told.
                delivery.status, delivery.claimed_at = DeliveryStatus.SCHEDULED, None
                delivery.due_at = moment + UNAVAILABLE_RETRY
                outcome.deferred.append(delivery.id)
                alerts.raise_once(
                    session=session, kind="content", detail=unavailable_alert(name, reason)
                )
                continue
            delivery.status, delivery.final_at = DeliveryStatus.CANCELLED, moment
            delivery.error_message = f"not sent: program {name} was removed"
            outcome.cancelled.append(delivery.id)
            continue
        allowed = _allowed_at(
            session=session, settings=settings, participant=participant, program=program,
            moment=moment, counts=counts,
        )
        if allowed > moment:
            delivery.status, delivery.due_at, delivery.claimed_at = (
                DeliveryStatus.SCHEDULED, allowed, None,
            )
            outcome.deferred.append(delivery.id)
            continue
        if delivery.body is None and program is not None:
            # The program's decision rules, with the participant's latest state.
            decision = decide(
                session=session, participant=participant, program=program, delivery=delivery,
                moment=moment,
            )
            if decision.ended_run:
                hub.request(participant, "ended", moment)
                session.add(participant)
            if decision.action == "cancel":
                delivery.status, delivery.final_at = DeliveryStatus.CANCELLED, moment
                delivery.error_message = decision.reason[:500]
                outcome.cancelled.append(delivery.id)
                continue
            if decision.action == "defer" and decision.until is not None:
                delivery.status, delivery.due_at, delivery.claimed_at = (
                    DeliveryStatus.SCHEDULED, decision.until, None,
                )
                outcome.deferred.append(delivery.id)
                continue
            if decision.text is not None:
                delivery.body = decision.text
        if delivery.body is not None and delivery.segments is None:
            encoded = encode(delivery.body)
            delivery.body, delivery.segments = encoded.body, encoded.segments
            delivery.encoding = encoded.encoding
        delivery.status = DeliveryStatus.SENDING
        delivery.attempts += 1
        delivery.claimed_at = delivery.send_started_at = moment
        delivery.claim_token, delivery.claimed_by = token, worker_id
        counts.claim(participant.id or 0)
        # A template is rendered after this transaction commits (`render_claimed`): a slow or
        # runaway template never holds these row locks.
        ready.append((delivery.id, participant.phone, delivery.body))
    for delivery, _ in rows:
        session.add(delivery)
    return ready


def render_claimed(
    *, engine: Engine, programs: dict[str, Program], ids: list[int], token: str,
    outcome: BatchOutcome,
) -> dict[int, str]:
    """Render the claimed rows that have a template and no text yet, outside any transaction
    that holds locks, then store each text (or the failure) under our claim; returns the texts
    {id: body} ready to send.

    Rendering is bounded in time and size (bot.care.narrative). A crash in between leaves the row in
    sending with no text, which reconcile finds missing at the provider and sends again.
    """
    if not ids:
        return {}
    rendered: dict[int, tuple[str, int, str, str | None] | str] = {}
    with Session(engine, expire_on_commit=False) as session:
        rows = session.exec(
            select(Delivery, Participant)
            .join(Participant, col(Participant.id) == col(Delivery.participant_id))
            .where(col(Delivery.id).in_(ids))
        ).all()
        answers = answers_of(session, {p.id for _, p in rows if p.id is not None})
        for delivery, participant in rows:
            program = programs.get(participant.program)
            try:
                if program is None:
                    raise NarrativeError(f"program {participant.program!r} no longer exists")
                text = render(
                    program,
                    delivery.template or "",
                    message_context(
                        session=session, participant=participant, program=program,
                        delivery=delivery, answers=answers.get(participant.id or 0, []),
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
                rendered[delivery.id or 0] = str(exc)[:500]
                log.error("delivery %s not rendered: %s", delivery.id, exc)
                continue
            rendered[delivery.id or 0] = (
                encoded.body, encoded.segments, encoded.encoding, program.version
            )
        session.rollback()  # nothing was written: end the read
    table = Delivery.__table__  # type: ignore[attr-defined]
    texts: dict[int, str] = {}
    moment = now()
    with session_scope(engine) as session:
        for delivery_id, result in rendered.items():
            mine = update(table).where(
                table.c.id == delivery_id, table.c.status == DeliveryStatus.SENDING,
                table.c.claim_token == token, table.c.body.is_(None),
            )
            if isinstance(result, str):
                # Nothing is lost: the row waits, failed with the reason, for a coordinator.
                if session.exec(mine.values(
                    status=DeliveryStatus.FAILED, final_at=moment, error_message=result,
                )).rowcount:
                    outcome.failed.append(delivery_id)
                continue
            body, segments, encoding, version = result
            if session.exec(mine.values(
                body=body, segments=segments, encoding=encoding, program_version=version,
            )).rowcount:
                texts[delivery_id] = body
            else:
                outcome.skipped.append(delivery_id)
    return texts


HEARTBEAT_EVERY = timedelta(seconds=2)  # a sending worker's sign of life, at most this often


def beat(session: Session, worker_id: str, moment: datetime) -> None:
    """Record that `worker_id` is alive (see WorkerHeartbeat)."""
    table = WorkerHeartbeat.__table__  # type: ignore[attr-defined]
    session.exec(
        insert(session, table)
        .values(worker_id=worker_id, started_at=moment, beat_at=moment)
        .on_conflict_do_update(index_elements=[table.c.worker_id], set_={"beat_at": moment})
    )


def send_window(settings: Settings) -> timedelta:
    """How long after its claim a row may still be handed to the provider: well under the claim
    timeout, after which the dispatcher has it reconciled, so the two never overlap."""
    return timedelta(seconds=settings.claim_timeout_seconds) / 3


def gate(*, session: Session, settings: Settings, delivery_id: int, token: str) -> str:
    """The send gate, right before the provider call: "send" if the row is still ours (sending
    under `token`, claimed within the send window) and its participant still consents and is
    not paused, read from the database now; otherwise the row is settled and the reason
    returned ("cancelled", "deferred" or "skipped").

    On PostgreSQL the participant row is held FOR SHARE and the delivery row locked until the
    caller's transaction ends, which it does after the provider call: a STOP or a pause that
    commits first is seen here, one that comes later waits for this send to finish, and the
    dispatcher's reclaim (SKIP LOCKED) never takes a row that is being sent.
    """
    moment = now()
    table = Delivery.__table__  # type: ignore[attr-defined]
    people = Participant.__table__  # type: ignore[attr-defined]
    consents = select(people.c.id).where(
        people.c.id == table.c.participant_id,
        people.c.opted_out_at.is_(None),
        people.c.paused_at.is_(None),
        people.c.undeliverable_at.is_(None),
    )
    if session.get_bind().dialect.name == "postgresql":
        consents = consents.with_for_update(read=True)
    mine = [table.c.id == delivery_id, table.c.status == DeliveryStatus.SENDING,
            table.c.claim_token == token]
    passed = session.exec(
        update(table)
        .where(*mine, table.c.claimed_at >= moment - send_window(settings), consents.exists())
        .values(claimed_at=moment)
        .returning(table.c.id)
    ).first()
    if passed is not None:
        return "send"
    found = session.exec(
        select(Delivery, Participant)
        .join(Participant, col(Participant.id) == col(Delivery.participant_id))
        .where(Delivery.id == delivery_id)
    ).first()
    if found is None:
        return "skipped"
    delivery, participant = found
    if delivery.status != DeliveryStatus.SENDING or delivery.claim_token != token:
        return "skipped"  # reconciled or taken over: no longer ours to send
    if not participant.receives_automated_content:
        reason = "opted out" if participant.opted_out_at else (
            "paused" if participant.paused_at else "unreachable"
        )
        session.exec(update(table).where(*mine).values(
            status=DeliveryStatus.CANCELLED, final_at=moment,
            error_message=f"not sent: participant {reason}",
        ))
        log.info("delivery %s stopped at the send gate: participant %s", delivery_id, reason)
        return "cancelled"
    # Claimed too long ago (the batch waited for its rate slots): back to the outbox, due now.
    session.exec(update(table).where(*mine).values(
        status=DeliveryStatus.SCHEDULED, due_at=moment, claimed_at=None, claim_token=None,
        claimed_by=None, attempts=max(delivery.attempts - 1, 0),
    ))
    return "deferred"


def _apply_orphans(*, session: Session, sids: list[str]) -> None:
    """Status callbacks that beat us to recording the sids are applied now, in order."""
    query = select(UnmatchedStatus).where(col(UnmatchedStatus.message_sid).in_(sids)).order_by(
        col(UnmatchedStatus.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)  # the dispatcher has the others
    orphans = session.exec(query).all()
    for orphan in orphans:
        delivery_status.record_status(
            session=session, message_sid=orphan.message_sid, provider_status=orphan.status,
            error_code=orphan.error_code,
        )
        session.delete(orphan)


def record_sent_many(*, session: Session, sids: dict[int, str], token: str | None) -> set[int]:
    """Store the provider sids {delivery id: sid} of deliveries still in sending (under our
    claim); returns the ids that moved to accepted.

    One UPDATE for all of them, one INSERT for their accepted events and one SELECT for held
    callbacks: a batch costs a few statements, not a few per message.
    """
    if not sids:
        return set()
    table = Delivery.__table__  # type: ignore[attr-defined]
    conditions = [table.c.id.in_(sids), table.c.status == DeliveryStatus.SENDING]
    if token is not None:
        conditions.append(table.c.claim_token == token)
    moved = set(
        session.exec(
            update(table)
            .where(*conditions)
            .values(
                status=DeliveryStatus.ACCEPTED,
                provider_sid=case(sids, value=table.c.id),
                sent_at=now(),
            )
            .returning(table.c.id)
        ).scalars()
    )
    if not moved:
        return moved
    # A core UPDATE bypasses the identity map: rows this session holds must be read again.
    for instance in list(session.identity_map.values()):
        if isinstance(instance, Delivery) and instance.id in moved:
            session.expire(instance)
    delivery_status.record_events(
        session=session,
        events=[(delivery_id, DeliveryStatus.ACCEPTED, None) for delivery_id in sorted(moved)],
    )
    _apply_orphans(session=session, sids=[sids[delivery_id] for delivery_id in sorted(moved)])
    return moved


def record_sent(*, session: Session, delivery_id: int, sid: str, token: str | None) -> bool:
    """Store the provider sid of a delivery still in sending (under our claim)."""
    return bool(record_sent_many(session=session, sids={delivery_id: sid}, token=token))


def record_failure(
    *, session: Session, settings: Settings, delivery_id: int, failure: SendFailure
) -> str:
    """Retry later (durably, in SQL) or fail for good; returns "retried" or "failed"."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.status != DeliveryStatus.SENDING:
        return "skipped"
    delivery.error_code = failure.code or failure.status
    delivery.error_message = failure.message
    if failure.retryable and delivery.attempts < settings.max_send_attempts:
        delivery.status = DeliveryStatus.SCHEDULED
        delivery.due_at = now() + backoff(delivery.attempts)
        delivery.claimed_at = delivery.claim_token = None
        session.add(delivery)
        return "retried"
    delivery.status, delivery.final_at = DeliveryStatus.FAILED, now()
    session.add(delivery)
    delivery_status.record_event(
        session=session, delivery_id=delivery_id, status=DeliveryStatus.FAILED,
        error_code=delivery.error_code,
    )
    if failure.code is not None:
        delivery_status.flag_participant(
            session=session, participant_id=delivery.participant_id, error_code=failure.code
        )
    return "failed"


class BatchSender:
    """Sends claimed deliveries through one pooled client, several at a time."""

    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        sender: SmsSender,
        limiter: RateLimiter | None,
        programs: dict[str, Program],
    ):
        self.engine, self.settings, self.sender = engine, settings, sender
        self.limiter, self.programs = limiter, programs
        self.pool = ThreadPoolExecutor(max_workers=settings.send_concurrency)
        # Rows this worker leaves in sending carry its id; once its heartbeat stops they are
        # reconciled at once rather than after the claim timeout.
        self.worker_id = uuid.uuid4().hex
        self._last_beat = datetime.min.replace(tzinfo=UTC)

    def send_batch(self, ids: list[int]) -> BatchOutcome:
        outcome = BatchOutcome()
        token = uuid.uuid4().hex
        with session_scope(self.engine) as session:
            prepared = _prepare(
                session=session, settings=self.settings, programs=self.programs, ids=ids,
                token=token, outcome=outcome, worker_id=self.worker_id,
            )
        self._last_beat = now()
        ready = [item for item in prepared if item[2] is not None]
        phones = {delivery_id: phone for delivery_id, phone, body in prepared if body is None}
        texts = render_claimed(engine=self.engine, programs=self.programs, ids=list(phones),
                               token=token, outcome=outcome)
        ready += [(delivery_id, phones[delivery_id], body) for delivery_id, body in texts.items()]
        # The claims are committed: from here a crash leaves rows in sending, to be reconciled.
        futures = [self.pool.submit(self._send_one, item, token) for item in ready]
        sids: dict[int, str] = {}
        error: BaseException | None = None
        for future in futures:
            try:
                delivery_id, result, sid = future.result()
            except BaseException as exc:  # the others' sids are still stored, then it is raised
                error = error or exc
                continue
            getattr(outcome, result).append(delivery_id)
            if sid is not None:
                sids[delivery_id] = sid
        # The sids of the whole batch in one transaction, as soon as its sends are done: a
        # crash before this commits leaves the rows in sending, and reconcile finds them in the
        # provider's log as it would after a crash right after a single send.
        if sids:
            with session_scope(self.engine) as session:
                record_sent_many(session=session, sids=sids, token=token)
        if error is not None:
            raise error
        return outcome

    def _send_one(self, item: tuple[int, str, str], token: str) -> tuple[int, str, str | None]:
        """Call the provider for one claimed row, through the send gate; returns
        (id, outcome, sid if accepted)."""
        delivery_id, to, body = item
        if self.limiter is not None:
            self.limiter.wait()
        # The gate's transaction stays open through the provider call (see `gate`).
        with session_scope(self.engine) as session:
            moment = now()
            if moment - self._last_beat >= HEARTBEAT_EVERY:
                self._last_beat = moment
                beat(session, self.worker_id, moment)
            verdict = gate(
                session=session, settings=self.settings, delivery_id=delivery_id, token=token
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
                result = record_failure(
                    session=session, settings=self.settings, delivery_id=delivery_id,
                    failure=failure,
                )
                log.info("delivery %s: provider said %s; %s", delivery_id, failure, result)
                return delivery_id, result, None
        return delivery_id, "sent", sent.sid

    def reconcile(self, delivery_id: int) -> str:
        """Settle a row left in sending: find it in the provider's log, or send it again once."""
        with session_scope(self.engine) as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is None or delivery.status != DeliveryStatus.SENDING:
                return "skipped"
            participant = session.get(Participant, delivery.participant_id)
            since = delivery.send_started_at or delivery.claimed_at or delivery.created_at
            assert participant is not None
            phone, body = participant.phone, delivery.body or ""
        try:
            found = self.sender.sent_to(to=phone, since=since)
        except SendFailure as failure:
            log.warning(
                "reconcile %s: could not read the provider's log (%s)", delivery_id, failure
            )
            return "unknown"
        with session_scope(self.engine) as session:
            # The same text may have gone to them before (a carrier retry, a repeated event):
            # a message already recorded for another delivery is not this one.
            known = set(
                session.exec(
                    select(Delivery.provider_sid).where(
                        col(Delivery.provider_sid).in_([sid for sid, _, _ in found])
                    )
                )
            ) if found else set()
            match = next(
                (sid for sid, text, _ in reversed(found) if text == body and sid not in known),
                None,
            )
            if match is not None and record_sent(
                session=session, delivery_id=delivery_id, sid=match, token=None
            ):
                log.info("reconcile %s: the provider has it (%s)", delivery_id, match)
                return "found"
            session.exec(
                update(Delivery)
                .where(col(Delivery.id) == delivery_id, Delivery.status == DeliveryStatus.SENDING)
                .values(status=DeliveryStatus.SCHEDULED, due_at=now(), claimed_at=None)
            )
        log.info("reconcile %s: never reached the provider; sending again", delivery_id)
        return "resent"
