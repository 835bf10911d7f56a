"""The send gate holds a row through its provider call: a STOP that comes during the call waits
for it, and the dispatcher's reclaim passes the row by, however late it is."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bot.care.programs import live_programs, load_programs
from bot.clock import now
from bot.delivery.outbox import claim_due, claim_stale
from bot.delivery.provider import SmsSender
from bot.delivery.sending import BatchSender
from bot.participants.enrollment import enroll
from bot.store.db import session_scope
from bot.store.models import Delivery, DeliveryStatus

SAM = "+14155550142"  # enrolled a moment ago; his welcome is being sent when he texts STOP


def welcome_being_sent(stack, engine) -> tuple[int, threading.Thread]:
    """Sam's welcome, its provider call under way (the provider takes a while to accept)."""
    with session_scope(engine) as session:
        enroll(session=session, phone=SAM, program=load_programs(stack.settings.narratives_dir)[
            "daily-checkin"], timezone="UTC", via="cli")
    stack.faults([{"delay": 2.0}])
    sender = BatchSender(engine=engine, settings=stack.settings, sender=SmsSender(stack.settings),
                         limiter=None, programs=live_programs(stack.settings.narratives_dir))
    [welcome] = claim_due(engine=engine, limit=10)
    thread = threading.Thread(target=sender.send_batch, args=([welcome],))
    thread.start()
    assert wait_until_locked(engine, welcome)
    return welcome, thread


def wait_until_locked(engine, delivery_id: int, timeout: float = 10.0) -> bool:
    """Whether the gate comes to hold the row's lock within `timeout`: the claim and its text
    are committed, and still the row cannot be locked."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            try:
                claimed = connection.execute(
                    text("SELECT 1 FROM delivery WHERE id = :id AND status = 'sending' "
                         "AND body IS NOT NULL"), {"id": delivery_id},
                ).first()
                if claimed is not None:
                    connection.execute(
                        text("SELECT id FROM delivery WHERE id = :id FOR UPDATE NOWAIT"),
                        {"id": delivery_id},
                    )
            except OperationalError:  # lock not available: the gate holds it
                return True
            finally:
                connection.rollback()
        time.sleep(0.02)
    return False


def test_a_stop_during_the_provider_call_waits_for_it_and_nothing_follows_the_confirmation(
    stack, engine
):
    welcome, thread = welcome_being_sent(stack, engine)
    answered: list = []
    stop = threading.Thread(target=lambda: answered.append(stack.text(SAM, "STOP")))
    stop.start()
    stop.join(20)
    thread.join(20)
    assert answered and answered[0].ok
    bodies = [m.body for m in stack.outbound_to(SAM)]
    # The welcome was past the gate before the STOP: it went out, then the confirmation.
    assert len(bodies) == 2 and "unsubscribed" in bodies[-1]


def test_a_row_being_sent_is_passed_by_a_reclaim_even_past_its_claim_timeout(
    stack, engine, session
):
    welcome, thread = welcome_being_sent(stack, engine)
    late = now() + timedelta(seconds=stack.settings.claim_timeout_seconds + 1)
    assert claim_stale(engine=engine, limit=10, claim_timeout=timedelta(
        seconds=stack.settings.claim_timeout_seconds), moment=late) == []
    thread.join(20)
    assert len(stack.outbound_to(SAM)) == 1
    row = session.get(Delivery, welcome, populate_existing=True)
    assert row is not None and row.status == DeliveryStatus.ACCEPTED and row.claim_token
