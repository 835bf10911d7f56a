"""Provider status callbacks: one transition per status, and status only moves forward."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlmodel import Session, col, select, update

from bot.clock import now
from bot.delivery.outbox import backoff
from bot.participants import consent
from bot.settings import Settings
from bot.store.db import insert_or_ignore
from bot.store.models import (
    FINAL_STATUSES,
    STATUS_RANK,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    Participant,
    UnmatchedStatus,
)
from bot.store.queries import cancel_pending

log = logging.getLogger(__name__)

PROVIDER_STATUS = {
    "accepted": DeliveryStatus.ACCEPTED,
    "scheduled": DeliveryStatus.ACCEPTED,
    "queued": DeliveryStatus.ACCEPTED,
    "sending": DeliveryStatus.ACCEPTED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.CANCELLED,
}
OPTED_OUT_CODES = frozenset({21610})  # the recipient texted STOP to the carrier
UNREACHABLE_CODES = frozenset({21211, 21614, 30005, 30006})  # invalid, landline, unknown
# Carrier trouble that passes: queue overflow, handset unreachable for now, unknown error.
CARRIER_RETRY_CODES = frozenset({30001, 30003, 30008})
DEFAULT_MAX_ATTEMPTS = Settings.max_send_attempts


def record_event(
    *, session: Session, delivery_id: int, status: str, error_code: int | None = None
) -> bool:
    """Log that a delivery reached `status`, once; False if it was already logged."""
    return bool(record_events(session=session, events=[(delivery_id, status, error_code)]))


def record_events(*, session: Session, events: list[tuple[int, str, int | None]]) -> int:
    """Log (delivery_id, status, error_code) transitions in one statement; returns how many
    were new. The unique (delivery_id, status) makes a repeated one a no-op, not an error."""
    if not events:
        return 0
    moment = now()
    rows = [
        {"delivery_id": delivery_id, "status": status, "error_code": code, "at": moment}
        for delivery_id, status, code in events
    ]
    table = DeliveryEvent.__table__  # type: ignore[attr-defined]
    # One multi-row VALUES statement; RETURNING counts the rows that went in (an INSERT's
    # rowcount is -1 on PostgreSQL here, which would count a repeat as new).
    statement = insert_or_ignore(session, table).values(rows).returning(table.c.id)
    return len(session.exec(statement).all())


def advance(
    *,
    session: Session,
    delivery_id: int,
    status: DeliveryStatus,
    error_code: int | None = None,
    error_message: str | None = None,
) -> bool:
    """Move a delivery to `status` if that is forward of where it is; one conditional update."""
    lower = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]]
    values: dict[str, object] = {"status": status}
    if status in FINAL_STATUSES:
        values["final_at"] = now()
    if error_code is not None:
        values["error_code"] = error_code
    if error_message is not None:
        values["error_message"] = error_message[:500]
    moved = session.exec(
        update(Delivery)
        .where(col(Delivery.id) == delivery_id, col(Delivery.status).in_(lower))
        .values(**values)
    ).rowcount
    return bool(moved)


def flag_participant(*, session: Session, participant_id: int, error_code: int) -> None:
    """React to a provider error that says something about the person, not the message."""
    participant = session.get(Participant, participant_id)
    if participant is None:
        return
    if error_code in OPTED_OUT_CODES:
        consent.opt_out(
            session=session, participant=participant, reason="carrier opt-out 21610"
        )
    elif error_code in UNREACHABLE_CODES and participant.undeliverable_at is None:
        participant.undeliverable_at = now()
        participant.undeliverable_reason = f"provider error {error_code}"
        session.add(participant)
        cancel_pending(
            session=session, participant=participant, reason=f"unreachable ({error_code})"
        )
        log.warning("participant %s flagged unreachable (error %s)", participant.id, error_code)


def schedule_retry(
    *, session: Session, delivery_id: int, max_attempts: int = DEFAULT_MAX_ATTEMPTS
) -> Delivery | None:
    """A new outbox row for a message the carrier could not deliver: same text, after a backoff.

    Only while the participant still receives content and the attempts (counted across the
    chain of retries) are under the bound; once per failed delivery.
    """
    failed = session.get(Delivery, delivery_id, populate_existing=True)
    if failed is None or failed.via != "api" or failed.attempts >= max_attempts:
        return None
    participant = session.get(Participant, failed.participant_id)
    if participant is None or not participant.receives_automated_content:
        return None
    if session.exec(select(Delivery.id).where(Delivery.retry_of == delivery_id)).first():
        return None
    retry = Delivery(
        participant_id=failed.participant_id,
        kind=failed.kind,
        event_key=failed.event_key,
        template=failed.template,
        context=dict(failed.context or {}),
        assessment=failed.assessment,
        body=failed.body,
        segments=failed.segments,
        program_version=failed.program_version,
        due_at=now() + backoff(failed.attempts),
        attempts=failed.attempts,
        retry_of=failed.id,
    )
    session.add(retry)
    session.flush()
    log.info("delivery %s undelivered; retry %s due %s", failed.id, retry.id, retry.due_at)
    return retry


# PostgreSQL: a callback in one round trip. The delivery found by its sid, the event logged
# once (the unique (delivery_id, status) makes a repeat a no-op), and only a new event moves
# the delivery, only forward: a late "sent" finds it delivered and leaves it there (under a
# concurrent callback the UPDATE re-reads the row it waited for before judging it).
_CALLBACK_ON_POSTGRES = text("""
WITH found AS (
    SELECT id, participant_id FROM delivery WHERE provider_sid = :sid
), logged AS (
    INSERT INTO delivery_event (delivery_id, status, error_code, at)
    SELECT id, CAST(:status AS varchar), CAST(:code AS integer), CAST(:moment AS timestamptz)
    FROM found
    ON CONFLICT (delivery_id, status) DO NOTHING
    RETURNING delivery_id
), moved AS (
    UPDATE delivery SET
        status = CAST(:status AS varchar),
        final_at = CASE WHEN CAST(:final AS boolean) THEN CAST(:moment AS timestamptz)
                        ELSE delivery.final_at END,
        error_code = COALESCE(CAST(:code AS integer), delivery.error_code)
    FROM logged
    WHERE delivery.id = logged.delivery_id
      AND delivery.status = ANY(CAST(:lower AS varchar[]))
    RETURNING delivery.id
)
SELECT found.id, found.participant_id, EXISTS (SELECT 1 FROM logged) AS logged,
       EXISTS (SELECT 1 FROM moved) AS moved
FROM found
""")


def _apply_callback(
    session: Session, message_sid: str, status: DeliveryStatus, error_code: int | None
) -> tuple[int, int, bool, bool] | None:
    """(delivery id, participant id, whether the event was new, whether the delivery moved)
    for the delivery with `message_sid`; None when no delivery has it (yet)."""
    if session.get_bind().dialect.name == "postgresql":
        session.flush()  # as a query through the session would (a no-op with nothing pending)
        row = session.connection().execute(_CALLBACK_ON_POSTGRES, {
            "sid": message_sid, "status": status.value, "code": error_code, "moment": now(),
            "final": status in FINAL_STATUSES,
            "lower": [s.value for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[status]],
        }).first()
        return None if row is None else (row[0], row[1], bool(row[2]), bool(row[3]))
    # SQLite has no INSERT or UPDATE inside WITH: the same steps, one statement each.
    found = session.exec(
        select(Delivery.id, Delivery.participant_id).where(Delivery.provider_sid == message_sid)
    ).first()
    if found is None:
        return None
    delivery_id, participant_id = found
    if not record_event(
        session=session, delivery_id=delivery_id, status=status, error_code=error_code
    ):
        return delivery_id, participant_id, False, False
    moved = advance(session=session, delivery_id=delivery_id, status=status, error_code=error_code)
    return delivery_id, participant_id, True, moved


def record_status(
    *,
    session: Session,
    message_sid: str,
    provider_status: str,
    error_code: int | None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> str:
    """Apply one status callback; returns what happened (for the log and the tests)."""
    status = PROVIDER_STATUS.get(provider_status.lower())
    if status is None:
        return "unknown-status"
    applied = _apply_callback(session, message_sid, status, error_code)
    if applied is None:
        # It may have beaten the worker to recording the sid: keep it to apply then.
        session.add(
            UnmatchedStatus(message_sid=message_sid, status=provider_status, error_code=error_code)
        )
        return "unmatched"
    delivery_id, participant_id, logged, moved = applied
    if not logged:
        return "duplicate"
    if error_code is not None:
        flag_participant(session=session, participant_id=participant_id, error_code=error_code)
    if (
        moved
        and status in (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED)
        and error_code in CARRIER_RETRY_CODES
    ):
        schedule_retry(session=session, delivery_id=delivery_id, max_attempts=max_attempts)
    return "advanced" if moved else "stale"


def apply_unmatched(
    *, session: Session, older_than_seconds: int = 2, max_attempts: int = DEFAULT_MAX_ATTEMPTS
) -> int:
    """Apply held callbacks whose sid is now known; drop those a day old that never matched."""
    from datetime import timedelta

    moment = now()
    query = (
        select(UnmatchedStatus)
        .where(UnmatchedStatus.received_at <= moment - timedelta(seconds=older_than_seconds))
        .order_by(col(UnmatchedStatus.id))
        .limit(1000)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Two dispatchers (or a worker recording its sids) take disjoint callbacks.
        query = query.with_for_update(skip_locked=True)
    held = session.exec(query).all()
    applied = 0
    for orphan in held:
        known = session.exec(
            select(Delivery.id).where(Delivery.provider_sid == orphan.message_sid)
        ).first()
        if known is not None:
            record_status(
                session=session, message_sid=orphan.message_sid,
                provider_status=orphan.status, error_code=orphan.error_code,
                max_attempts=max_attempts,
            )
            applied += 1
        if known is not None or orphan.received_at <= moment - timedelta(days=1):
            session.delete(orphan)
    return applied
