"""Settling a row a worker left in sending: found in the provider's log, or sent again once."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine
from sqlmodel import col, select, update

from bot.clock import now
from bot.delivery.provider import SendFailure, SmsSender
from bot.delivery.record import record_sent
from bot.store.db import session_scope
from bot.store.models import Delivery, DeliveryStatus, Participant

log = logging.getLogger(__name__)


def reconcile(*, engine: Engine, sender: SmsSender, delivery_id: int) -> str:
    """Find the row in the provider's log ("found"), or put it back in the outbox to be sent
    again ("resent"); "skipped" when it is no longer in sending, "unknown" when the provider's
    log could not be read."""
    with session_scope(engine) as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.status != DeliveryStatus.SENDING:
            return "skipped"
        participant = session.get(Participant, delivery.participant_id)
        since = delivery.send_started_at or delivery.claimed_at or delivery.created_at
        assert participant is not None
        phone, body = participant.phone, delivery.body or ""
    try:
        found = sender.sent_to(to=phone, since=since)
    except SendFailure as failure:
        log.warning("reconcile %s: could not read the provider's log (%s)", delivery_id, failure)
        return "unknown"
    with session_scope(engine) as session:
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
