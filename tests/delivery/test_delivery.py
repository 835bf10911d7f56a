"""Outbound delivery end to end: SQL outbox -> dispatcher -> RQ (real Redis) -> worker ->
the twilio library over HTTP -> sandbox -> signed status callbacks -> bot."""

from __future__ import annotations

from datetime import timedelta

from rq import SimpleWorker
from sqlmodel import Session, select

from bot.care.programs import load_programs
from bot.clock import now
from bot.delivery.queues import delivery_queue
from bot.participants.enrollment import enroll
from bot.store.db import session_scope
from bot.store.models import Delivery, DeliveryStatus, Participant
from tests.conftest import wait_for
from worker import dispatcher

# Enrolled by a coordinator at the clinic, welcome due right away.
SAM = "+14155550142"


def program(settings):
    return load_programs(settings.narratives_dir)["daily-checkin"]


def run_worker(stack, redis_conn) -> None:
    queue = delivery_queue(stack.settings, redis_conn)
    dispatcher.tick(engine=stack_engine(stack), queue=queue, settings=stack.settings)
    SimpleWorker([queue], connection=redis_conn).work(burst=True)


def stack_engine(stack):
    from bot.store.db import get_engine

    return get_engine(stack.settings.database_url)


def welcome(session: Session) -> Delivery:
    session.expire_all()
    return session.exec(select(Delivery).where(Delivery.kind == "welcome")).one()


def test_a_clinic_enrollment_sends_the_welcome_and_records_its_delivery(
    stack, engine, redis_conn, session
):
    with session_scope(engine) as s:
        enroll(session=s, phone=SAM, program=program(stack.settings), timezone="America/Chicago",
               via="cli")
    run_worker(stack, redis_conn)
    [message] = stack.outbound_to(SAM)
    assert "Daily Check-in" in message.body and "STOP" in message.body
    sent = welcome(session)
    assert sent.provider_sid == message.sid
    assert sent.body == message.body
    assert sent.program_version == program(stack.settings).version
    assert wait_for(lambda: welcome(session).status == DeliveryStatus.DELIVERED, sweeping=engine)


def test_a_rate_limit_is_retried_later_and_sent_once(stack, engine, redis_conn, session):
    with session_scope(engine) as s:
        enroll(session=s, phone=SAM, program=program(stack.settings), timezone="UTC", via="cli")
    stack.faults([{"status": 429, "code": 20429}])
    run_worker(stack, redis_conn)
    retried = welcome(session)
    assert retried.status == DeliveryStatus.SCHEDULED
    assert retried.attempts == 1 and retried.error_code == 20429
    assert retried.due_at > now()
    assert stack.outbound_to(SAM) == []
    # Its retry time comes: the dispatcher takes it again from SQL.
    retried.due_at = now() - timedelta(seconds=1)
    session.add(retried)
    session.commit()
    run_worker(stack, redis_conn)
    assert len(stack.outbound_to(SAM)) == 1
    assert welcome(session).status in (DeliveryStatus.ACCEPTED, DeliveryStatus.SENT,
                                       DeliveryStatus.DELIVERED)


def test_an_invalid_number_fails_the_delivery_and_flags_the_participant(
    stack, engine, redis_conn, session
):
    with session_scope(engine) as s:
        enroll(session=s, phone=SAM, program=program(stack.settings), timezone="UTC", via="cli")
    stack.faults([{"status": 400, "code": 21211}])
    run_worker(stack, redis_conn)
    failed = welcome(session)
    assert failed.status == DeliveryStatus.FAILED and failed.error_code == 21211
    person = session.exec(select(Participant)).one()
    assert person.undeliverable_at is not None
    assert "21211" in (person.undeliverable_reason or "")


def test_a_carrier_opt_out_marks_the_participant_opted_out(stack, engine, redis_conn, session):
    with session_scope(engine) as s:
        enroll(session=s, phone=SAM, program=program(stack.settings), timezone="UTC", via="cli")
    stack.faults([{"status": 400, "code": 21610}])
    run_worker(stack, redis_conn)
    person = session.exec(select(Participant)).one()
    assert person.opted_out_at is not None
    pending = session.exec(
        select(Delivery).where(Delivery.status == DeliveryStatus.SCHEDULED)
    ).all()
    assert pending == []


def test_stop_arriving_while_a_message_is_queued_means_it_is_never_sent(
    stack, engine, redis_conn, session
):
    with session_scope(engine) as s:
        enroll(session=s, phone=SAM, program=program(stack.settings), timezone="UTC", via="cli")
    queue = delivery_queue(stack.settings, redis_conn)
    dispatcher.tick(engine=engine, queue=queue, settings=stack.settings)
    assert welcome(session).status == DeliveryStatus.QUEUED
    assert stack.text(SAM, "STOP").status_code == 200
    SimpleWorker([queue], connection=redis_conn).work(burst=True)
    outbound = [m.body for m in stack.outbound_to(SAM)]
    assert len(outbound) == 1 and "unsubscribed" in outbound[0]  # only the confirmation
    assert welcome(session).status == DeliveryStatus.CANCELLED


def test_texting_the_bot_from_the_sandbox_phone_joins_and_answers(stack, session):
    response = stack.text("+14155550177", "JOIN")
    assert response.status_code == 200, response.text
    [reply] = stack.outbound_to("+14155550177")
    assert "Daily Check-in" in reply.body
    assert session.exec(select(Participant)).one().phone == "+14155550177"
