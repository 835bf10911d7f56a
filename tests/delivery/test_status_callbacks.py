"""Provider status callbacks: signed, applied once each, only ever forward, early ones held."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlmodel import Session, select
from twilio.request_validator import RequestValidator

from bot.clock import now
from bot.delivery.queues import delivery_queue
from bot.delivery.record import record_sent
from bot.store.db import session_scope
from bot.store.models import Delivery, DeliveryEvent, DeliveryStatus, Participant, UnmatchedStatus
from tests.conftest import sign
from worker import dispatcher

# Dana gets her daily message; the provider reports on it however the carrier's network allows.
DANA = "+14155550171"
SID = "SM" + "d" * 32


def sent_delivery(session: Session, *, sid: str | None = SID, status: str = "accepted") -> int:
    """Dana and one message to her, handed to the provider (or being handed, without a sid)."""
    dana = Participant(phone=DANA, program="daily-checkin", timezone="America/Chicago")
    session.add(dana)
    session.flush()
    delivery = Delivery(
        participant_id=dana.id, kind="event", event_key="daily_tip#1", body="Take a breath.",
        status=status, provider_sid=sid, attempts=1, claim_token="t" * 32,
        sent_at=now() if sid else None, send_started_at=now(), claimed_at=now(),
    )
    session.add(delivery)
    session.commit()
    assert delivery.id is not None
    return delivery.id


def callback(status: str, sid: str = SID, error_code: str | None = None) -> dict[str, str]:
    """The form Twilio posts to a StatusCallback URL."""
    params = {
        "SmsSid": sid, "SmsStatus": status, "MessageStatus": status, "To": DANA,
        "MessageSid": sid, "AccountSid": "AC" + "0" * 32, "From": "+15005550006",
        "ApiVersion": "2010-04-01",
    }
    if error_code is not None:
        params["ErrorCode"] = error_code
    return params


@pytest.fixture
def report(twilio_post: Callable[..., Any]) -> Callable[..., Any]:
    """Post a signed status callback; assert it was taken."""

    def post(status: str, sid: str = SID, error_code: str | None = None) -> None:
        response = twilio_post("/twilio/status", callback(status, sid, error_code))
        assert response.status_code == 204, response.data

    return post


def status_of(session: Session, delivery_id: int) -> str:
    session.expire_all()
    delivery = session.get(Delivery, delivery_id)
    assert delivery is not None
    return delivery.status


def events(session: Session, delivery_id: int) -> list[str]:
    return sorted(
        session.exec(select(DeliveryEvent.status).where(DeliveryEvent.delivery_id == delivery_id))
    )


def held(session: Session) -> list[UnmatchedStatus]:
    return list(session.exec(select(UnmatchedStatus)).all())


@pytest.mark.parametrize(
    "order",
    [
        ["sent", "sent", "delivered", "delivered"],  # retried by the provider
        ["delivered", "sent"],  # the carrier's report overtook the provider's
        ["sent", "delivered", "sent", "queued"],  # late and later still
    ],
)
def test_duplicate_and_out_of_order_callbacks_leave_the_furthest_status_each_logged_once(
    session, report, order
):
    delivery_id = sent_delivery(session)
    for status in order:
        report(status)
    assert status_of(session, delivery_id) == DeliveryStatus.DELIVERED
    logged = events(session, delivery_id)
    assert logged == sorted(set(logged))  # each status once
    assert set(logged) == {
        {"queued": DeliveryStatus.ACCEPTED}.get(s, s) for s in order
    }


def test_a_failure_reported_after_delivery_does_not_undo_it(session, report):
    delivery_id = sent_delivery(session)
    report("delivered")
    report("undelivered", error_code="30003")
    assert status_of(session, delivery_id) == DeliveryStatus.DELIVERED
    assert session.exec(select(Delivery).where(Delivery.retry_of == delivery_id)).all() == []


def test_a_callback_that_beats_the_worker_to_the_sid_is_applied_once_the_sid_is_known(
    engine, session, report
):
    delivery_id = sent_delivery(session, sid=None, status=DeliveryStatus.SENDING)
    report("sent")
    report("delivered")
    assert len(held(session)) == 2
    assert status_of(session, delivery_id) == DeliveryStatus.SENDING
    with session_scope(engine) as s:  # the worker comes back from the provider with the sid
        assert record_sent(session=s, delivery_id=delivery_id, sid=SID, token="t" * 32)
    assert status_of(session, delivery_id) == DeliveryStatus.DELIVERED
    assert events(session, delivery_id) == ["accepted", "delivered", "sent"]
    assert held(session) == []


def test_a_callback_held_while_the_sid_was_being_recorded_is_applied_by_the_dispatcher(
    engine, session, settings, redis_conn, report
):
    delivery_id = sent_delivery(session, sid=None, status=DeliveryStatus.SENDING)
    report("delivered")
    # The worker's transaction stored the sid just as the callback's stored its orphan.
    delivery = session.get(Delivery, delivery_id)
    delivery.provider_sid, delivery.status = SID, DeliveryStatus.ACCEPTED
    session.add(delivery)
    session.commit()
    queue = delivery_queue(settings, redis_conn)
    assert dispatcher.tick(engine=engine, queue=queue, settings=settings).callbacks == 0
    with freeze_time(now() + timedelta(seconds=3)):
        assert dispatcher.tick(engine=engine, queue=queue, settings=settings).callbacks == 1
    assert status_of(session, delivery_id) == DeliveryStatus.DELIVERED
    assert events(session, delivery_id) == ["delivered"]
    assert held(session) == []


def test_a_held_callback_that_never_matches_is_dropped_after_a_day(
    engine, session, settings, redis_conn, report
):
    report("delivered", sid="SM" + "0" * 32)
    queue = delivery_queue(settings, redis_conn)
    with freeze_time(now() + timedelta(hours=1)):
        dispatcher.tick(engine=engine, queue=queue, settings=settings)
    assert len(held(session)) == 1
    with freeze_time(now() + timedelta(days=1, minutes=1)):
        dispatcher.tick(engine=engine, queue=queue, settings=settings)
    session.expire_all()
    assert held(session) == []


def forgeries(settings: Any) -> dict[str, dict[str, str]]:
    """Headers of requests that did not come from the provider."""
    genuine = callback("delivered")
    tampered = sign(settings, "/twilio/status", {**genuine, "MessageStatus": "sent"})
    other_account = RequestValidator("someone-elses-token").compute_signature(
        settings.public_base_url + "/twilio/status", genuine
    )
    other_url = sign(settings, "/twilio/sms", genuine)
    return {
        "unsigned": {},
        "empty": {"X-Twilio-Signature": ""},
        "garbage": {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
        "signed for other params": {"X-Twilio-Signature": tampered},
        "signed with another token": {"X-Twilio-Signature": other_account},
        "signed for another url": {"X-Twilio-Signature": other_url},
    }


@pytest.mark.parametrize(
    "forgery",
    ["unsigned", "empty", "garbage", "signed for other params", "signed with another token",
     "signed for another url"],
)
def test_a_forged_or_unsigned_callback_is_refused_and_changes_nothing(
    client, settings, session, forgery
):
    delivery_id = sent_delivery(session)
    response = client.post(
        "/twilio/status", data=callback("delivered"), headers=forgeries(settings)[forgery]
    )
    assert response.status_code == 403
    assert status_of(session, delivery_id) == DeliveryStatus.ACCEPTED
    assert events(session, delivery_id) == []
    assert held(session) == []


@pytest.mark.parametrize("garbled", ["30O3", "3.0", "error", "30003; DROP TABLE delivery"])
def test_a_callback_with_a_garbled_error_code_gets_400_and_changes_nothing(
    twilio_post, session, garbled
):
    delivery_id = sent_delivery(session)
    response = twilio_post("/twilio/status", callback("undelivered", error_code=garbled))
    assert response.status_code == 400
    assert "ErrorCode" in response.get_data(as_text=True)
    assert status_of(session, delivery_id) == DeliveryStatus.ACCEPTED
    assert events(session, delivery_id) == []
    assert held(session) == []


def test_a_callback_without_a_status_gets_400(twilio_post, session):
    delivery_id = sent_delivery(session)
    params = callback("delivered")
    del params["MessageStatus"]
    assert twilio_post("/twilio/status", params).status_code == 400
    assert events(session, delivery_id) == []


def retries_of(session: Session, delivery_id: int) -> list[Delivery]:
    session.expire_all()
    return list(session.exec(select(Delivery).where(Delivery.retry_of == delivery_id)).all())


def test_a_repeated_undelivered_callback_schedules_one_retry(session, report):
    delivery_id = sent_delivery(session)
    report("undelivered", error_code="30003")
    report("undelivered", error_code="30003")
    [retry] = retries_of(session, delivery_id)
    assert retry.body == "Take a breath." and retry.event_key == "daily_tip#1"
    assert retry.status == DeliveryStatus.SCHEDULED and retry.due_at > now()


def test_an_undelivered_message_is_not_retried_for_someone_who_has_opted_out_since(
    session, report
):
    delivery_id = sent_delivery(session)
    dana = session.exec(select(Participant)).one()
    dana.opted_out_at = now()
    session.add(dana)
    session.commit()
    report("undelivered", error_code="30003")
    assert status_of(session, delivery_id) == DeliveryStatus.UNDELIVERED
    assert retries_of(session, delivery_id) == []


def test_an_undelivered_message_at_its_last_attempt_is_not_retried(session, report):
    delivery_id = sent_delivery(session)
    delivery = session.get(Delivery, delivery_id)
    delivery.attempts = 6  # the default MAX_SEND_ATTEMPTS
    session.add(delivery)
    session.commit()
    report("undelivered", error_code="30008")
    assert retries_of(session, delivery_id) == []
