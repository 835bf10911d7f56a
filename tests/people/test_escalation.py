"""Escalation until a person acknowledges: every channel at once, then the next on-call number
each ESCALATE_AFTER_MINUTES, round the rota, until someone acknowledges (console or ACK by text)
or resolves; once only with several dispatchers; and what the participant is promised."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from bot.delivery.encoding import encode
from bot.delivery.provider import SmsSender
from bot.hours import parse_hours
from bot.people.escalation import (
    acknowledge,
    acknowledgement_by_sms,
    notify_due,
    schedule_first_notification,
)
from bot.people.oncall import CONTACT, NO_CONTACT, promise
from bot.settings import Settings
from bot.store.db import create_tables, get_engine, session_scope
from bot.store.models import Alert
from bot.store.support import AuditEvent, Notification
from tests.people.channels import (
    ONCALL,
    PLAIN_LOGIN,
    TEAM,
    alerting,
    enroll_participant,
    hook_server,  # noqa: F401  (the hook fixture)
    mail_servers,  # noqa: F401  (the mail fixture)
    text_crisis,
)

pytestmark = PLAIN_LOGIN

# Sam is enrolled and texts that he wants to die; later, that he cannot go on.
SAM = "+14155550142"
# Maya is enrolled too and texts crisis language the same evening.
MAYA = "+14155550123"
TEN = timedelta(minutes=10)


def alert_of(session: Session, alert_id: int) -> Alert:
    session.expire_all()
    found = session.get(Alert, alert_id)
    assert found is not None
    return found


def sent_rounds(session: Session) -> list[tuple[int, str, str]]:
    session.expire_all()
    return [(n.round, n.channel, n.target) for n in session.exec(
        select(Notification).where(Notification.status == "sent").order_by(col(Notification.id)))]


def tick(engine, settings: Settings, moment: datetime) -> int:
    return notify_due(engine, settings, moment, sms=SmsSender)


def texts_to(stack, phone: str) -> list[str]:
    return [m.body for m in stack.outbound_to(phone)]


# --- rounds -----------------------------------------------------------------------------------


def test_a_new_crisis_alert_tells_every_channel_on_the_next_tick_and_only_once(
    stack, engine, session, mail, hook
):
    server = mail()
    settings = alerting(stack.settings, server, hook)
    alert = text_crisis(engine, settings, SAM, "i want to die")
    start = alert.next_escalation_at  # now, when it was raised
    assert tick(engine, settings, start + timedelta(milliseconds=500)) == 1
    assert tick(engine, settings, start + timedelta(seconds=1)) == 0  # nothing more is due
    assert tick(engine, settings, start + TEN - timedelta(seconds=1)) == 0
    assert sent_rounds(session) == [
        (0, "sms", ONCALL[0]), (0, "email", TEAM), (0, "webhook", "127.0.0.1")]
    assert len(server.received) == 1 and len(hook.posts) == 1
    assert [len(texts_to(stack, phone)) for phone in ONCALL] == [1, 0, 0]
    escalating = alert_of(session, alert.id)
    assert escalating.escalation_round == 1
    assert escalating.next_escalation_at == start + timedelta(milliseconds=500) + TEN


def test_nobody_acknowledging_texts_the_next_on_call_number_round_the_rota(
    stack, engine, session, mail, hook
):
    server = mail()
    settings = alerting(stack.settings, server, hook)
    sam = enroll_participant(engine, settings, SAM)
    alert = text_crisis(engine, settings, SAM, "i want to die")
    moment = alert.next_escalation_at
    for _ in range(4):  # at once, then three escalations
        assert tick(engine, settings, moment) == 1
        moment += TEN
    assert [len(texts_to(stack, phone)) for phone in ONCALL] == [2, 1, 1]  # wrapped to the first
    [second] = texts_to(stack, ONCALL[1])
    assert second.startswith(f"Tend: crisis alert {alert.id} (suicide) for participant {sam} "
                             f"is still not acknowledged after 10 min. Open ")
    assert "still not acknowledged after 30 min" in texts_to(stack, ONCALL[0])[1]
    assert [e.message["Subject"] for e in server.received] == [
        f"[Tend] Crisis alert {alert.id} (suicide)",
        f"[Tend] Crisis alert {alert.id} (suicide): still not acknowledged after 10 min",
        f"[Tend] Crisis alert {alert.id} (suicide): still not acknowledged after 20 min",
        f"[Tend] Crisis alert {alert.id} (suicide): still not acknowledged after 30 min",
    ]
    assert "still not acknowledged after 20 min" in hook.posts[2].payload["text"]
    assert alert_of(session, alert.id).escalation_round == 4


def test_acknowledging_in_the_console_stops_escalation(stack, engine, session):
    settings = alerting(stack.settings)
    alert = text_crisis(engine, settings, SAM, "i want to die")
    tick(engine, settings, alert.next_escalation_at)
    acknowledged_at = alert.next_escalation_at + timedelta(minutes=3)
    with session_scope(engine) as s:
        done = acknowledge(s, alert.id, "coach@clinic.example.org", acknowledged_at)
        assert done is not None and done.acknowledged_by == "coach@clinic.example.org"
    assert tick(engine, settings, alert.next_escalation_at + 5 * TEN) == 0
    assert [len(texts_to(stack, phone)) for phone in ONCALL] == [1, 0, 0]
    stopped = alert_of(session, alert.id)
    assert (stopped.acknowledged_at, stopped.next_escalation_at) == (acknowledged_at, None)
    with session_scope(engine) as s:  # the first acknowledgement stands
        again = acknowledge(s, alert.id, "other@clinic.example.org", acknowledged_at + TEN)
        assert again is not None and again.acknowledged_by == "coach@clinic.example.org"
        assert acknowledge(s, 9999, "coach@clinic.example.org", acknowledged_at) is None


def test_resolving_an_alert_stops_escalation(stack, engine, session):
    settings = alerting(stack.settings)
    alert = text_crisis(engine, settings, SAM, "i want to die")
    tick(engine, settings, alert.next_escalation_at)
    with session_scope(engine) as s:
        s.get(Alert, alert.id).resolved_at = alert.next_escalation_at + timedelta(minutes=2)
    assert tick(engine, settings, alert.next_escalation_at + 3 * TEN) == 0
    assert len(texts_to(stack, ONCALL[1])) == 0


def test_an_acknowledgement_during_a_round_is_never_undone_by_it(stack, engine, session, hook):
    settings = alerting(stack.settings, hook=hook)
    alert = text_crisis(engine, settings, SAM, "i want to die")
    hook.hold = threading.Event()  # the chat service is slow to answer
    racing = threading.Thread(target=tick, args=(engine, settings, alert.next_escalation_at))
    racing.start()
    assert hook.arrived.wait(10)  # the round is under way
    with session_scope(engine) as s:
        acknowledge(s, alert.id, "coach@clinic.example.org", alert.next_escalation_at)
    hook.hold.set()
    racing.join()
    stopped = alert_of(session, alert.id)
    assert stopped.escalation_round == 1 and stopped.next_escalation_at is None


def test_acknowledging_one_alert_stops_every_open_crisis_alert_of_that_participant(
    stack, engine, session
):
    settings = alerting(stack.settings)
    enroll_participant(engine, settings, SAM)
    enroll_participant(engine, settings, MAYA)
    first = text_crisis(engine, settings, SAM, "i want to die")
    second = text_crisis(engine, settings, SAM, "i want to kill myself tonight")
    maya = text_crisis(engine, settings, MAYA, "i want to end my life")
    with session_scope(engine) as s:
        acknowledge(s, first.id, "coach@clinic.example.org", first.next_escalation_at)
    assert alert_of(session, second.id).acknowledged_by == "coach@clinic.example.org"
    assert alert_of(session, maya.id).acknowledged_at is None
    assert tick(engine, settings, maya.next_escalation_at) == 1  # Maya's alone


def test_a_round_that_reached_nobody_escalates_after_a_minute(stack, engine, session):
    settings = alerting(stack.settings)
    alert = text_crisis(engine, settings, SAM, "i want to die")
    stack.faults([{"status": 400, "code": 21610}], to=ONCALL[0])  # the first number opted out
    tick(engine, settings, alert.next_escalation_at)
    assert alert_of(session, alert.id).next_escalation_at == alert.next_escalation_at + timedelta(
        minutes=1)
    assert tick(engine, settings, alert.next_escalation_at + timedelta(minutes=1)) == 1
    assert len(texts_to(stack, ONCALL[1])) == 1


def test_an_alert_raised_with_no_channel_is_told_once_a_channel_is_set(stack, engine, session):
    alert = text_crisis(engine, stack.settings, SAM, "i want to die")
    assert tick(engine, stack.settings, alert.next_escalation_at) == 0  # nobody to tell yet
    assert alert_of(session, alert.id).escalation_round == 0
    assert tick(engine, alerting(stack.settings), alert.next_escalation_at + TEN) == 1
    assert len(texts_to(stack, ONCALL[0])) == 1


def test_a_round_left_unfinished_is_claimed_again_after_its_lease(stack, engine, session):
    settings = alerting(stack.settings)
    alert = text_crisis(engine, settings, SAM, "i want to die")
    with session_scope(engine) as s:  # a dispatcher claimed round 0, then died
        s.get(Alert, alert.id).next_escalation_at = alert.next_escalation_at + timedelta(minutes=2)
    assert tick(engine, settings, alert.next_escalation_at + timedelta(minutes=1)) == 0
    assert tick(engine, settings, alert.next_escalation_at + timedelta(minutes=2)) == 1
    assert sent_rounds(session) == [(0, "sms", ONCALL[0])]


def test_a_human_request_alert_pages_nobody(stack, engine, session):
    settings = alerting(stack.settings)
    with session_scope(engine) as s:
        human = Alert(kind="human", detail="asked for a person")
        schedule_first_notification(human, human.created_at)
        s.add(human)
    assert tick(engine, settings, human.created_at) == 0


# --- two dispatchers at once ------------------------------------------------------------------


def race(engine, settings: Settings, moment: datetime, dispatchers: int = 2) -> list[int]:
    start = threading.Barrier(dispatchers)
    results: list[int] = []

    def dispatch() -> None:
        start.wait()
        results.append(tick(engine, settings, moment))

    threads = [threading.Thread(target=dispatch) for _ in range(dispatchers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_dispatchers_on_postgres_notify_once(stack, engine, session):
    settings = alerting(stack.settings)
    alerts = [text_crisis(engine, settings, phone, "i want to die") for phone in (SAM, MAYA)]
    for moment in (alerts[-1].next_escalation_at, alerts[-1].next_escalation_at + TEN):
        assert sorted(race(engine, settings, moment, dispatchers=3)) in ([0, 0, 2], [0, 1, 1])
    assert [len(texts_to(stack, phone)) for phone in ONCALL] == [2, 2, 0]
    assert len(sent_rounds(session)) == 4


def test_two_dispatchers_on_sqlite_notify_once(stack, tmp_path):
    settings = alerting(stack.settings).with_overrides(
        database_url=f"sqlite:///{tmp_path / 'tend.sqlite3'}")
    engine = get_engine(settings.database_url)
    create_tables(engine)
    try:
        alert = text_crisis(engine, settings, SAM, "i want to die")
        assert sorted(race(engine, settings, alert.next_escalation_at)) == [0, 1]
        assert sorted(race(engine, settings, alert.next_escalation_at + TEN)) == [0, 1]
        assert [len(texts_to(stack, phone)) for phone in ONCALL] == [1, 1, 0]
    finally:
        engine.dispose()


# --- acknowledging by text --------------------------------------------------------------------


def test_ack_with_the_alert_number_from_an_on_call_phone_stops_escalation(stack, engine, session):
    settings = alerting(stack.settings)
    alert = text_crisis(engine, settings, SAM, "i want to die")
    tick(engine, settings, alert.next_escalation_at)
    at = alert.next_escalation_at + timedelta(minutes=4)
    with session_scope(engine) as s:
        reply = acknowledgement_by_sms(s, settings, ONCALL[0], f" ack {alert.id} ", at)
    assert reply == (f"Thanks: alert {alert.id} is yours and escalation has stopped. "
                     f"{settings.public_base_url}/console/alerts/{alert.id}")
    stopped = alert_of(session, alert.id)
    assert (stopped.acknowledged_by, stopped.acknowledged_at) == ("sms:+•••••••0101", at)
    [event] = session.exec(select(AuditEvent)).all()
    assert (event.actor, event.action, event.participant_id) == (
        "sms:+•••••••0101", "acknowledge-alert", stopped.participant_id)
    assert tick(engine, settings, alert.next_escalation_at + 3 * TEN) == 0


def test_a_plain_ack_takes_the_latest_open_alert(stack, engine, session):
    settings = alerting(stack.settings)
    older = text_crisis(engine, settings, SAM, "i want to die")
    newer = text_crisis(engine, settings, MAYA, "i want to end my life")
    with session_scope(engine) as s:
        reply = acknowledgement_by_sms(s, settings, ONCALL[1], "ACK", newer.next_escalation_at)
    assert reply is not None and reply.startswith(f"Thanks: alert {newer.id} is yours")
    assert alert_of(session, older.id).acknowledged_at is None


@pytest.mark.parametrize(
    ("sender", "body"),
    [
        (SAM, "ACK"),  # a participant is never an on-call number
        (ONCALL[0], "ack please call me"),
        (ONCALL[0], "i want to die"),
        (ONCALL[0], "OK"),
        (ONCALL[0], "ACK 99999999999"),  # no alert number is that long
    ],
)
def test_any_other_text_is_left_to_the_inbound_handler(stack, engine, sender, body):
    settings = alerting(stack.settings)
    alert = text_crisis(engine, settings, MAYA, "i want to end my life")
    with session_scope(engine) as s:
        assert acknowledgement_by_sms(s, settings, sender, body, alert.next_escalation_at) is None


def test_ack_answers_plainly_when_there_is_nothing_to_acknowledge(stack, engine):
    settings = alerting(stack.settings)
    with session_scope(engine) as s:
        assert acknowledgement_by_sms(s, settings, ONCALL[0], "ACK", datetime.now(UTC)) == (
            "There is no open crisis alert to acknowledge.")
        assert acknowledgement_by_sms(s, settings, ONCALL[0], "ACK 77", datetime.now(UTC)) == (
            "There is no alert 77. Reply ACK for the latest open alert.")
    alert = text_crisis(engine, settings, SAM, "i want to die")
    with session_scope(engine) as s:
        acknowledge(s, alert.id, "coach@clinic.example.org", alert.next_escalation_at)
    with session_scope(engine) as s:
        reply = acknowledgement_by_sms(s, settings, ONCALL[1], f"ACK {alert.id}",
                                       alert.next_escalation_at)
    assert reply is not None
    assert reply.startswith(f"Alert {alert.id} was acknowledged already, by "
                            f"coach@clinic.example.org at ")


def test_a_second_on_call_phone_hears_who_acknowledged_first_in_plain_characters(stack, engine):
    settings = alerting(stack.settings)
    alert = text_crisis(engine, settings, SAM, "i want to die")
    moment = alert.next_escalation_at
    with session_scope(engine) as s:
        acknowledgement_by_sms(s, settings, ONCALL[0], "ACK", moment)
    with session_scope(engine) as s:
        late = acknowledgement_by_sms(s, settings, ONCALL[1], f"ack #{alert.id}", moment)
    assert late is not None and "by the on-call phone ending 0101 at " in late
    assert encode(late).encoding == "GSM-7"
    with session_scope(engine) as s:
        s.get(Alert, alert.id).resolved_at = moment
    with session_scope(engine) as s:
        resolved = acknowledgement_by_sms(s, settings, ONCALL[2], f"ACK {alert.id}", moment)
    assert resolved is not None and resolved.startswith(f"Alert {alert.id} is resolved already.")


# --- what the participant is promised ---------------------------------------------------------

# Staffed weekdays in New York; 2026-06-05 is a Friday.
STAFFED = {"staffed_hours": parse_hours("Mon-Fri 09:00-17:00"),
           "staffed_timezone": "America/New_York"}
FRIDAY_NOON = datetime(2026, 6, 5, 16, 0, tzinfo=UTC)


def test_with_no_channel_the_reply_promises_no_contact() -> None:
    settings = Settings().with_overrides(**STAFFED)
    assert promise(settings, FRIDAY_NOON) == NO_CONTACT == (
        "Automated messages are paused and your message is saved for the study team.")
    assert "reach out" not in NO_CONTACT


def test_with_a_channel_a_person_will_reach_out_at_any_hour_when_no_hours_are_set() -> None:
    settings = Settings().with_overrides(alert_webhook_url="https://hooks.example.org/x")
    assert promise(settings, datetime(2026, 6, 7, 7, 0, tzinfo=UTC)) == CONTACT
    assert "a person will reach out" in CONTACT


@pytest.mark.parametrize(
    ("moment", "timezone", "expected"),
    [
        (FRIDAY_NOON, None, CONTACT),
        (datetime(2026, 6, 5, 22, 0, tzinfo=UTC), None, "back, on Monday at 9 AM (EDT)."),
        (datetime(2026, 6, 8, 11, 0, tzinfo=UTC), None, "back, today at 9 AM (EDT)."),
        (datetime(2026, 6, 9, 2, 30, tzinfo=UTC), None, "back, tomorrow at 9 AM (EDT)."),
        (datetime(2026, 6, 6, 14, 0, tzinfo=UTC), None, "back, on Monday at 9 AM (EDT)."),
        (datetime(2026, 6, 8, 21, 30, tzinfo=UTC), None, "back, tomorrow at 9 AM (EDT)."),
        (datetime(2026, 6, 5, 22, 0, tzinfo=UTC), "America/Los_Angeles",
         "back, on Monday at 6 AM."),
        (datetime(2026, 6, 5, 22, 0, tzinfo=UTC), "Not/AZone", "back, on Monday at 9 AM (EDT)."),
    ],
)
def test_outside_staffed_hours_the_reply_says_when_someone_will_see_the_message(
    moment: datetime, timezone: str | None, expected: str
) -> None:
    settings = Settings().with_overrides(oncall_phones=ONCALL[:1], **STAFFED)
    said = promise(settings, moment, timezone)
    assert said.endswith(expected)
    if expected != CONTACT:
        assert said.startswith(NO_CONTACT) and "reach out" not in said


def test_with_no_channel_the_promise_is_what_the_safety_reply_says_today(settings) -> None:
    from bot.conversation.safety import safety_reply

    assert safety_reply(settings).endswith(promise(settings, FRIDAY_NOON))
