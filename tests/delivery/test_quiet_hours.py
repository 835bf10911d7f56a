"""A sane local hour and a daily cap: deferred, never dropped; nothing after STOP or a pause.

These run with the default quiet hours (21:00-08:00 local) and cap (4 a day), unlike the
`stack` fixture, which lifts quiet hours so end-to-end tests can run at any hour.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from rq import SimpleWorker
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.care.programs import load_programs
from bot.clock import now
from bot.delivery import outbox
from bot.delivery.provider import SmsSender
from bot.delivery.queues import delivery_queue
from bot.delivery.sending import BatchSender
from bot.participants import consent
from bot.settings import Settings
from bot.store.models import Delivery, DeliveryStatus, Participant
from worker import context, dispatcher

# Eli, who texts from wherever the parametrization puts him.
ELI = "+14155550181"
QUIET_START, QUIET_END = time(21, 0), time(8, 0)


def local(tz: str, text: str) -> datetime:
    """A wall-clock time in `tz`, as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text + "+00:00")


def person(session: Session, tz: str, phone: str = ELI) -> Participant:
    eli = Participant(phone=phone, program="daily-checkin", timezone=tz)
    session.add(eli)
    session.commit()
    return eli


def due_message(session: Session, eli: Participant, due: datetime, **fields: object) -> int:
    values: dict[str, object] = {"kind": "event", "body": "Take two minutes outside today."}
    delivery = Delivery(participant_id=eli.id, due_at=due, **{**values, **fields})
    session.add(delivery)
    session.commit()
    assert delivery.id is not None
    return delivery.id


def batch_sender(engine: Engine, settings: Settings) -> BatchSender:
    return BatchSender(
        engine=engine, settings=settings, sender=SmsSender(settings), limiter=None,
        programs=load_programs(settings.narratives_dir),
    )


def fresh(session: Session, delivery_id: int) -> Delivery:
    session.expire_all()
    found = session.get(Delivery, delivery_id)
    assert found is not None
    return found


def test_the_settings_here_keep_the_default_quiet_hours(settings):
    assert (settings.quiet_hours_start, settings.quiet_hours_end) == (QUIET_START, QUIET_END)
    assert settings.daily_message_cap == 4


@pytest.mark.parametrize(
    "tz, due, morning",
    [
        # America/New_York springs forward at 02:00 on 2026-03-08: 08:00 is EDT, UTC-4.
        ("America/New_York", "2026-03-07 22:30", "2026-03-08 12:00"),
        # ... and falls back at 02:00 on 2026-11-01: 08:00 is EST, UTC-5.
        ("America/New_York", "2026-10-31 22:30", "2026-11-01 13:00"),
        # Europe/London springs forward at 01:00 GMT on 2026-03-29: 08:00 BST is 07:00 UTC.
        ("Europe/London", "2026-03-28 22:30", "2026-03-29 07:00"),
        # ... and falls back at 02:00 BST on 2026-10-25: 08:00 GMT is 08:00 UTC.
        ("Europe/London", "2026-10-24 22:30", "2026-10-25 08:00"),
        # Pacific/Auckland leaves daylight time on 2026-04-05 (UTC+13 -> +12) ...
        ("Pacific/Auckland", "2026-04-04 22:30", "2026-04-04 20:00"),
        # ... and enters it on 2026-09-27 (UTC+12 -> +13); its morning is the day before in UTC.
        ("Pacific/Auckland", "2026-09-26 22:30", "2026-09-26 19:00"),
        # In the small hours of a change: 01:30 happens twice in New York on 2026-11-01 ...
        ("America/New_York", "2026-11-01 01:30", "2026-11-01 13:00"),
        # ... and 01:59 is the last minute before 02:00 does not happen on 2026-03-08.
        ("America/New_York", "2026-03-08 01:59", "2026-03-08 12:00"),
        ("Europe/London", "2026-03-29 00:30", "2026-03-29 07:00"),
    ],
)
def test_a_message_due_in_quiet_hours_waits_until_eight_local_across_daylight_saving(
    engine, session, settings, tz, due, morning
):
    eli = person(session, tz)
    due_at = local(tz, due)
    delivery_id = due_message(session, eli, due_at)
    with freeze_time(due_at) as clock:
        ids = outbox.claim_due(engine=engine, limit=10)
        assert ids == [delivery_id]
        outcome = batch_sender(engine, settings).send_batch(ids)
        assert outcome.deferred == [delivery_id]
        deferred = fresh(session, delivery_id)
        assert deferred.status == DeliveryStatus.SCHEDULED and deferred.attempts == 0
        assert deferred.due_at == utc(morning)  # not dropped: due again at 08:00 local
        assert deferred.due_at.astimezone(ZoneInfo(tz)).time() == QUIET_END
        clock.move_to(utc(morning) - timedelta(seconds=1))
        assert outbox.claim_due(engine=engine, limit=10) == []
        clock.move_to(utc(morning))
        assert outbox.claim_due(engine=engine, limit=10) == [delivery_id]


def test_a_message_due_at_half_past_ten_at_night_is_sent_at_eight_the_next_morning_once(
    stack, engine, session, redis_conn
):
    quiet = context.use(stack.settings.with_overrides(quiet_hours_start=QUIET_START)).settings
    queue = delivery_queue(quiet, redis_conn)

    def deliver() -> dispatcher.Tick:
        result = dispatcher.tick(engine=engine, queue=queue, settings=quiet)
        SimpleWorker([queue], connection=redis_conn).work(burst=True)
        return result

    eli = person(session, "America/Chicago")
    due_at = local("America/Chicago", "2026-06-10 22:30")
    delivery_id = due_message(session, eli, due_at)
    with freeze_time(due_at, tick=True) as clock:
        assert deliver().due == 1
        assert stack.outbound_to(ELI) == []
        assert fresh(session, delivery_id).due_at == local("America/Chicago", "2026-06-11 08:00")
        clock.move_to(local("America/Chicago", "2026-06-11 07:59:59"))
        assert deliver().due == 0
        clock.move_to(local("America/Chicago", "2026-06-11 08:00"))
        assert deliver().due == 1
        assert deliver().due == 0
    [message] = stack.outbound_to(ELI)
    assert message.body == "Take two minutes outside today."
    sent = fresh(session, delivery_id)
    assert sent.provider_sid == message.sid
    assert sent.sent_at.astimezone(ZoneInfo("America/Chicago")).hour == 8


def test_the_message_past_the_daily_cap_waits_until_the_next_morning(engine, session, settings):
    eli = person(session, "America/Chicago")
    noon = local("America/Chicago", "2026-06-10 12:00")
    for hour in (8, 9, 10, 11):  # four already went out this morning
        sent_at = local("America/Chicago", f"2026-06-10 {hour:02d}:00")
        due_message(session, eli, sent_at, status=DeliveryStatus.DELIVERED, sent_at=sent_at,
                    provider_sid=f"SM{hour:032x}", attempts=1)
    # Replies to the participant's own texts are not program content: they do not count.
    due_message(session, eli, noon, kind="reply", status=DeliveryStatus.DELIVERED, sent_at=noon,
                provider_sid="SM" + "f" * 32, attempts=1)
    fifth = due_message(session, eli, noon)
    with freeze_time(noon):
        outcome = batch_sender(engine, settings).send_batch(
            outbox.claim_due(engine=engine, limit=10)
        )
    assert outcome.deferred == [fifth]
    assert fresh(session, fifth).due_at == local("America/Chicago", "2026-06-11 08:00")


def test_an_undelivered_message_does_not_count_toward_the_daily_cap(engine, session, settings):
    eli = person(session, "Europe/London")
    noon = local("Europe/London", "2026-06-10 12:00")
    for hour in (8, 9, 10):
        sent_at = local("Europe/London", f"2026-06-10 {hour:02d}:00")
        due_message(session, eli, sent_at, status=DeliveryStatus.DELIVERED, sent_at=sent_at,
                    provider_sid=f"SM{hour:032x}", attempts=1)
    lost = local("Europe/London", "2026-06-10 11:00")
    due_message(session, eli, lost, status=DeliveryStatus.UNDELIVERED, sent_at=lost,
                provider_sid="SM" + "e" * 32, attempts=1, error_code=30003)
    # Claimed by another worker right now: it counts, so only one of the two below may go.
    due_message(session, eli, noon, status=DeliveryStatus.SENDING, send_started_at=noon,
                claimed_at=noon, attempts=1)
    extra = due_message(session, eli, noon)
    with freeze_time(noon):
        outcome = batch_sender(engine, settings).send_batch(
            outbox.claim_due(engine=engine, limit=10)
        )
    assert outcome.deferred == [extra]


def test_the_daily_cap_holds_within_one_batch(stack, engine, session, redis_conn):
    capped = stack.settings.with_overrides(quiet_hours_start=QUIET_START, daily_message_cap=2)
    context.use(capped)
    queue = delivery_queue(capped, redis_conn)
    eli = person(session, "Pacific/Auckland")
    morning = local("Pacific/Auckland", "2026-06-10 09:00")
    ids = [due_message(session, eli, morning + timedelta(minutes=i)) for i in range(3)]
    with freeze_time(morning + timedelta(minutes=5), tick=True) as clock:
        assert dispatcher.tick(engine=engine, queue=queue, settings=capped).due == 3
        SimpleWorker([queue], connection=redis_conn).work(burst=True)
        assert len(stack.outbound_to(ELI)) == 2
        waiting = [i for i in ids if fresh(session, i).status == DeliveryStatus.SCHEDULED]
        assert len(waiting) == 1
        assert fresh(session, waiting[0]).due_at == local("Pacific/Auckland", "2026-06-11 08:00")
        clock.move_to(local("Pacific/Auckland", "2026-06-11 08:00"))
        assert dispatcher.tick(engine=engine, queue=queue, settings=capped).due == 1
        SimpleWorker([queue], connection=redis_conn).work(burst=True)
    assert len(stack.outbound_to(ELI)) == 3


def opt_out(session: Session, eli: Participant) -> None:
    consent.opt_out(session=session, participant=eli, reason="STOP")


def pause(session: Session, eli: Participant) -> None:
    consent.pause(session=session, participant=eli, reason="crisis language")


def opted_out_flag_only(session: Session, eli: Participant) -> None:
    eli.opted_out_at = now()  # as if the opt-out's cancel ran just before the claim
    session.add(eli)


def paused_flag_only(session: Session, eli: Participant) -> None:
    eli.paused_at = now()
    session.add(eli)


@pytest.mark.parametrize("stop", [opt_out, pause, opted_out_flag_only, paused_flag_only])
def test_a_queued_message_is_cancelled_never_sent_after_stop_or_a_crisis_pause(
    engine, session, settings, stop: Callable[[Session, Participant], None]
):
    eli = person(session, "America/New_York")
    noon = local("America/New_York", "2026-06-10 12:00")
    delivery_id = due_message(session, eli, noon)
    with freeze_time(noon):
        assert outbox.claim_due(engine=engine, limit=10) == [delivery_id]  # on the queue
        stop(session, session.get(Participant, eli.id))
        session.commit()
        outcome = batch_sender(engine, settings).send_batch([delivery_id])
    assert outcome.sent == []
    cancelled = fresh(session, delivery_id)
    assert cancelled.status == DeliveryStatus.CANCELLED
    assert cancelled.provider_sid is None and cancelled.attempts == 0
    assert session.exec(
        select(Delivery).where(Delivery.status == DeliveryStatus.SENDING)
    ).all() == []
