"""What a batch writes back: rendered texts, provider sids, provider refusals.

Each is one statement for the whole batch where the batch has many, so a batch costs a few
statements, not a few per message.
"""

from __future__ import annotations

import logging
from functools import cache

from sqlalchemy import bindparam, case, text, update
from sqlalchemy.sql import Update
from sqlmodel import Session, col, select

from bot.clock import now
from bot.delivery import status as delivery_status
from bot.delivery.outbox import backoff
from bot.delivery.provider import SendFailure
from bot.settings import Settings
from bot.store.models import Delivery, DeliveryStatus, UnmatchedStatus

log = logging.getLogger(__name__)

# A rendered text (body, segments, encoding, program version), or why it could not be rendered.
Rendered = tuple[str, int, str, str | None] | str


@cache
def _store_text() -> Update:
    """One rendered text onto a row still ours and still without text (run as executemany)."""
    table = Delivery.__table__  # type: ignore[attr-defined]
    return (
        update(table)
        .where(
            table.c.id == bindparam("row_id"), table.c.status == DeliveryStatus.SENDING,
            table.c.claim_token == bindparam("token"), table.c.body.is_(None),
        )
        .values(
            body=bindparam("text"), segments=bindparam("parts"), encoding=bindparam("charset"),
            program_version=bindparam("version"),
        )
    )


# PostgreSQL: every rendered text of the batch in one statement (SQLite: one per row).
_STORE_TEXTS_ON_POSTGRES = text("""
UPDATE delivery SET body = given.body, segments = given.segments, encoding = given.encoding,
                    program_version = given.version
FROM unnest(CAST(:ids AS integer[]), CAST(:texts AS varchar[]), CAST(:parts AS integer[]),
            CAST(:charsets AS varchar[]), CAST(:versions AS varchar[]))
     AS given (id, body, segments, encoding, version)
WHERE delivery.id = given.id AND delivery.status = :sending
  AND delivery.claim_token = :token AND delivery.body IS NULL
""")


def store_rendered(
    *, session: Session, token: str, rendered: dict[int, Rendered], failed: list[int]
) -> dict[int, str]:
    """Store each rendered text (or its failure) on rows still ours and still without text;
    returns the texts {id: body} to hand to the send gate, in `rendered`'s order. Ids failed
    for good go to `failed`.

    The texts are one statement for all rows (run once per row on SQLite); a row that is no
    longer ours keeps no text, and the send gate, which checks the same claim, refuses it.
    """
    table = Delivery.__table__  # type: ignore[attr-defined]
    moment = now()
    for delivery_id, result in rendered.items():
        # Nothing is lost: a row that could not be rendered waits, failed with the reason, for
        # a coordinator.
        if isinstance(result, str) and session.exec(
            update(table).where(
                table.c.id == delivery_id, table.c.status == DeliveryStatus.SENDING,
                table.c.claim_token == token, table.c.body.is_(None),
            ).values(status=DeliveryStatus.FAILED, final_at=moment, error_message=result)
        ).rowcount:
            failed.append(delivery_id)
    texts = {i: r for i, r in rendered.items() if not isinstance(r, str)}
    if texts and session.get_bind().dialect.name == "postgresql":
        rows = list(texts.items())
        session.connection().execute(_STORE_TEXTS_ON_POSTGRES, {
            "token": token, "sending": DeliveryStatus.SENDING.value,
            "ids": [i for i, _ in rows], "texts": [r[0] for _, r in rows],
            "parts": [r[1] for _, r in rows], "charsets": [r[2] for _, r in rows],
            "versions": [r[3] for _, r in rows],
        })
    elif texts:
        session.connection().execute(_store_text(), [
            {"row_id": i, "token": token, "text": body, "parts": parts, "charset": charset,
             "version": version}
            for i, (body, parts, charset, version) in texts.items()
        ])
    return {i: r[0] for i, r in texts.items()}


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


# PostgreSQL: the sids, their rows moved to accepted and the accepted events, one round trip.
_ACCEPT_ON_POSTGRES = text("""
WITH given AS (
    SELECT * FROM unnest(CAST(:ids AS integer[]), CAST(:sids AS varchar[])) AS g (id, sid)
), moved AS (
    UPDATE delivery SET status = :accepted, provider_sid = given.sid, sent_at = :moment
    FROM given
    WHERE delivery.id = given.id AND delivery.status = :sending
      AND (CAST(:token AS varchar) IS NULL OR delivery.claim_token = CAST(:token AS varchar))
    RETURNING delivery.id
), logged AS (
    INSERT INTO delivery_event (delivery_id, status, error_code, at)
    SELECT id, :accepted, NULL, :moment FROM moved
    ON CONFLICT (delivery_id, status) DO NOTHING
)
SELECT id FROM moved
""")


def _accept(session: Session, sids: dict[int, str], token: str | None) -> set[int]:
    """Move the rows still in sending (under `token`, if given) to accepted with their sids,
    logging the accepted events; returns the ids moved."""
    moment = now()
    if session.get_bind().dialect.name == "postgresql":
        return set(session.connection().execute(_ACCEPT_ON_POSTGRES, {
            "ids": list(sids), "sids": list(sids.values()), "token": token, "moment": moment,
            "accepted": DeliveryStatus.ACCEPTED.value, "sending": DeliveryStatus.SENDING.value,
        }).scalars())
    table = Delivery.__table__  # type: ignore[attr-defined]
    conditions = [table.c.id.in_(sids), table.c.status == DeliveryStatus.SENDING]
    if token is not None:
        conditions.append(table.c.claim_token == token)
    moved = set(session.exec(
        update(table)
        .where(*conditions)
        .values(
            status=DeliveryStatus.ACCEPTED, provider_sid=case(sids, value=table.c.id),
            sent_at=moment,
        )
        .returning(table.c.id)
    ).scalars())
    delivery_status.record_events(
        session=session,
        events=[(delivery_id, DeliveryStatus.ACCEPTED, None) for delivery_id in sorted(moved)],
    )
    return moved


def record_sent_many(*, session: Session, sids: dict[int, str], token: str | None) -> set[int]:
    """Store the provider sids {delivery id: sid} of deliveries still in sending (under our
    claim); returns the ids that moved to accepted.

    One statement for the sids and their accepted events (two on SQLite) and one SELECT for
    held callbacks: a batch costs a few statements, not a few per message.
    """
    if not sids:
        return set()
    moved = _accept(session, sids, token)
    if not moved:
        return moved
    # A core UPDATE bypasses the identity map: rows this session holds must be read again.
    for instance in list(session.identity_map.values()):
        if isinstance(instance, Delivery) and instance.id in moved:
            session.expire(instance)
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

