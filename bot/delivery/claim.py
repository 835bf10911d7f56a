"""Claiming a batch, row by row: what is never sent, what waits, what goes out now.

Everything here runs in the claim transaction (`bot.delivery.sending._prepare`), on rows it
holds locked; nothing here calls the provider or renders a template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from bot.care import hub
from bot.care.decisions import decide
from bot.care.programs import UNAVAILABLE_RETRY, Program, unavailable_alert, unavailable_reason
from bot.delivery import status as delivery_status
from bot.delivery.encoding import encode
from bot.settings import Settings
from bot.store import alerts
from bot.store.models import Delivery, DeliveryStatus, Participant


@dataclass
class BatchOutcome:
    sent: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # gone, or already taken by someone else
    released: list[int] = field(default_factory=list)  # back to the outbox: the worker stopped


def lock_rows(session: Session, ids: list[int]) -> list[tuple[Delivery, Participant]]:
    """The rows of `ids` still queued, with their participants, locked for this batch."""
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
    return list(session.exec(
        select(Delivery, Participant)
        .join(Participant, col(Participant.id) == col(Delivery.participant_id))
        .where(col(Delivery.id).in_(ids), Delivery.status == DeliveryStatus.QUEUED)
        .with_for_update(skip_locked=True, of=Delivery)
    ).all())


def _cancel(delivery: Delivery, moment: datetime, reason: str, outcome: BatchOutcome) -> None:
    delivery.status, delivery.final_at = DeliveryStatus.CANCELLED, moment
    delivery.error_message = reason[:500]
    outcome.cancelled.append(delivery.id or 0)


def defer(delivery: Delivery, until: datetime, outcome: BatchOutcome) -> None:
    """Back to the outbox, due at `until`."""
    delivery.status, delivery.due_at, delivery.claimed_at = DeliveryStatus.SCHEDULED, until, None
    outcome.deferred.append(delivery.id or 0)


def settle_unsendable(
    *, session: Session, settings: Settings, programs: dict[str, Program], delivery: Delivery,
    participant: Participant, moment: datetime, outcome: BatchOutcome,
) -> bool:
    """Settle a row that cannot go out (no consent, too many attempts, no program); returns
    whether it was settled."""
    receives = (participant.receives_a_person_s_text if delivery.staff_id is not None
                else participant.receives_automated_content)
    if not receives:
        reason = "opted out" if participant.opted_out_at else (
            "paused" if participant.paused_at else "unreachable"
        )
        _cancel(delivery, moment, f"not sent: participant {reason}", outcome)
        return True
    if delivery.attempts >= settings.max_send_attempts:
        # Crashed sends that never reached the provider, or carrier retries: bounded too.
        delivery.status, delivery.final_at = DeliveryStatus.FAILED, moment
        delivery.error_message = f"not sent: gave up after {delivery.attempts} attempts"
        outcome.failed.append(delivery.id or 0)
        delivery_status.record_event(
            session=session, delivery_id=delivery.id or 0, status=DeliveryStatus.FAILED,
            error_code=delivery.error_code,
        )
        return True
    if programs.get(participant.program) is None and delivery.body is None:
        name = participant.program
        reason = unavailable_reason(programs, name)
        if reason is not None:
            # Never dropped for a coordinator's broken file: it waits, and they are told.
            defer(delivery, moment + UNAVAILABLE_RETRY, outcome)
            alerts.raise_once(
                session=session, kind="content", detail=unavailable_alert(name, reason)
            )
            return True
        _cancel(delivery, moment, f"not sent: program {name} was removed", outcome)
        return True
    return False


def apply_decision(
    *, session: Session, program: Program, delivery: Delivery, participant: Participant,
    moment: datetime, outcome: BatchOutcome,
) -> bool:
    """The program's decision rules, with the participant's latest state, for a row with no
    text yet; returns whether the row still goes out now."""
    decision = decide(
        session=session, participant=participant, program=program, delivery=delivery,
        moment=moment,
    )
    if decision.ended_run:
        hub.request(participant, "ended", moment)
        session.add(participant)
    if decision.action == "cancel":
        _cancel(delivery, moment, decision.reason, outcome)
        return False
    if decision.action == "defer" and decision.until is not None:
        defer(delivery, decision.until, outcome)
        return False
    if decision.text is not None:
        delivery.body = decision.text
    return True


def mark_sending(
    session: Session, deliveries: list[Delivery], *, moment: datetime, token: str,
    worker_id: str | None,
) -> None:
    """Claim the rows for this batch in one statement: sending under `token`, attempts counted;
    a text a row already has is encoded. The instances show what was written, as if flushed."""
    if not deliveries:
        return
    for delivery in deliveries:
        if delivery.body is not None and delivery.segments is None:
            encoded = encode(delivery.body)
            delivery.body, delivery.segments = encoded.body, encoded.segments
            delivery.encoding = encoded.encoding
    table = Delivery.__table__  # type: ignore[attr-defined]
    claimed = {
        "status": DeliveryStatus.SENDING, "claimed_at": moment, "send_started_at": moment,
        "claim_token": token, "claimed_by": worker_id,
    }
    session.exec(  # type: ignore[call-overload]
        update(table)
        .where(table.c.id.in_([delivery.id for delivery in deliveries]))
        .values(attempts=table.c.attempts + 1, **claimed)
    )
    for delivery in deliveries:
        for name, value in claimed.items():
            set_committed_value(delivery, name, value)
        set_committed_value(delivery, "attempts", delivery.attempts + 1)
