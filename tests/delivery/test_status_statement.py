"""A status callback in one round trip on PostgreSQL, and the same outcomes on SQLite."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.clock import now
from bot.delivery.status import record_status
from bot.store.models import Delivery, DeliveryEvent, DeliveryStatus, Participant, UnmatchedStatus

# Sam's weekly tip has gone to the provider; its callbacks come however the network allows.
SAM = "+14155550172"
SID = "SM" + "5" * 32


def accepted(engine: Engine) -> int:
    """Sam and one message to him, accepted by the provider with its sid."""
    with Session(engine) as session:
        sam = Participant(phone=SAM, program="daily-checkin", timezone="America/Denver")
        session.add(sam)
        session.flush()
        delivery = Delivery(participant_id=sam.id or 0, kind="event", body="A weekly tip.",
                            status=DeliveryStatus.ACCEPTED, provider_sid=SID, attempts=1,
                            sent_at=now(), send_started_at=now(), claimed_at=now())
        session.add(delivery)
        session.commit()
        assert delivery.id is not None
        return delivery.id


def report(engine: Engine, status: str, error_code: int | None = None,
           sid: str = SID) -> str:
    with Session(engine) as session:
        outcome = record_status(session=session, message_sid=sid, provider_status=status,
                                error_code=error_code)
        session.commit()
    return outcome


def state(engine: Engine, delivery_id: int) -> tuple[str, list[str], int | None, bool]:
    """The delivery's status, its logged events, its error code, whether it has a final time."""
    with Session(engine) as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        logged = session.exec(
            select(DeliveryEvent.status).where(DeliveryEvent.delivery_id == delivery_id)
        ).all()
        return delivery.status, sorted(logged), delivery.error_code, delivery.final_at is not None


def test_callbacks_move_a_delivery_forward_once_each_on_either_database(any_engine: Engine):
    delivery_id = accepted(any_engine)

    outcomes = [report(any_engine, status) for status in ("sent", "sent", "delivered", "sent")]

    assert outcomes == ["advanced", "duplicate", "advanced", "duplicate"]
    assert state(any_engine, delivery_id) == (
        DeliveryStatus.DELIVERED, ["delivered", "sent"], None, True,
    )


def test_a_delivered_report_that_overtook_sent_is_kept_on_either_database(any_engine: Engine):
    delivery_id = accepted(any_engine)

    assert report(any_engine, "delivered") == "advanced"
    assert report(any_engine, "sent") == "stale"  # logged, but it does not move the delivery

    assert state(any_engine, delivery_id) == (
        DeliveryStatus.DELIVERED, ["delivered", "sent"], None, True,
    )


def test_a_failure_keeps_its_error_code_on_either_database(any_engine: Engine):
    delivery_id = accepted(any_engine)

    assert report(any_engine, "undelivered", error_code=30007) == "advanced"

    assert state(any_engine, delivery_id) == (
        DeliveryStatus.UNDELIVERED, ["undelivered"], 30007, True,
    )


def test_a_callback_for_an_unknown_sid_is_held_on_either_database(any_engine: Engine):
    accepted(any_engine)

    assert report(any_engine, "delivered", sid="SM" + "6" * 32) == "unmatched"

    with Session(any_engine) as session:
        [orphan] = session.exec(select(UnmatchedStatus)).all()
    assert (orphan.message_sid, orphan.status) == ("SM" + "6" * 32, "delivered")


def test_a_status_callback_is_one_statement_on_postgres(engine: Engine):
    accepted(engine)
    sent: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert report(engine, "sent") == "advanced"
        assert report(engine, "sent") == "duplicate"
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    assert len(sent) == 2  # one each: found, logged and moved in one round trip


def test_a_late_sent_racing_delivered_never_overwrites_it_on_postgres(engine: Engine):
    """The carrier's "delivered" is being applied when the provider's "sent" comes in: the
    second waits for the first's row lock, then finds the delivery already past "sent"."""
    delivery_id = accepted(engine)
    late: list[str] = []
    with Session(engine) as first:
        assert record_status(session=first, message_sid=SID, provider_status="delivered",
                             error_code=None) == "advanced"
        racing = threading.Thread(target=lambda: late.append(report(engine, "sent")))
        racing.start()
        racing.join(timeout=0.5)
        assert racing.is_alive()  # waiting for the delivery's row
        first.commit()
    racing.join(timeout=30)

    assert late == ["stale"]
    assert state(engine, delivery_id) == (
        DeliveryStatus.DELIVERED, ["delivered", "sent"], None, True,
    )
