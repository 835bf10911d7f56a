"""Safety and integrity: STOP and crisis always work, nothing goes out after STOP or twice,
one question gets one answer, and the bot promises nothing it does not do."""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlmodel import Session, col, select

from bot.care.hub import evaluate_participant
from bot.care.programs import Catalog, live_programs, load_programs
from bot.clock import now
from bot.conversation.inbound import handle_inbound
from bot.delivery.outbox import claim_due, claim_stale
from bot.delivery.provider import SmsSender
from bot.delivery.sending import BatchSender
from bot.logs import redacted_failures
from bot.participants.enrollment import enroll
from bot.store.db import session_scope
from bot.store.models import (
    Alert,
    AlertMessage,
    Answer,
    ConsentEvent,
    Delivery,
    DeliveryStatus,
    InboundMessage,
    Participant,
    WorkerHeartbeat,
)
from tests.conftest import inbound_params

ROOT = Path(__file__).resolve().parent.parent
SAM = "+14155550142"
MAYA = "+14155550123"
STRANGER = "+14155550199"


def copy_narratives(tmp_path: Path) -> Path:
    target = tmp_path / "narratives"
    shutil.copytree(ROOT / "narratives", target)
    return target


def break_encoding(folder: Path) -> None:
    path = folder / "program.yaml"
    path.write_bytes(path.read_bytes() + b"\ntitle: Caf\xe9 check-in\n")


def rows(session: Session, model, *where):
    session.expire_all()
    return list(session.exec(select(model).where(*where)))


# --- 1. A broken content file never stops STOP, crisis handling or HELP ----------------------


@pytest.fixture
def broken_app(settings, tmp_path):
    """The web app over a copy of the shipped programs whose daily-checkin file is not UTF-8,
    from the very first request (no last good version)."""
    from bot import create_app

    narratives = copy_narratives(tmp_path)
    break_encoding(narratives / "daily-checkin")
    wired = settings.with_overrides(narratives_dir=narratives)
    return create_app(wired), wired


def post(app, settings, body: str, phone: str = MAYA):
    from tests.conftest import sign

    params = inbound_params(phone, body)
    client = app.test_client()
    return client.post("/twilio/sms", data=params,
                       headers={"X-Twilio-Signature": sign(settings, "/twilio/sms", params)})


def test_a_program_file_that_is_not_utf8_never_silences_stop_crisis_or_help(
    broken_app, engine, session
):
    app, settings = broken_app
    with session_scope(engine) as s:
        programs = load_programs(ROOT / "narratives")
        enroll(session=s, phone=MAYA, program=programs["daily-checkin"], timezone="UTC",
               via="cli")
    help_reply = post(app, settings, "HELP")
    assert help_reply.status_code == 200 and "STOP" in help_reply.get_data(as_text=True)
    crisis_reply = post(app, settings, "i want to kill myself")
    assert crisis_reply.status_code == 200 and "988" in crisis_reply.get_data(as_text=True)
    stop_reply = post(app, settings, "STOP")
    assert stop_reply.status_code == 200
    assert "unsubscribed" in stop_reply.get_data(as_text=True)
    assert [m.body for m in rows(session, InboundMessage)] == [
        "HELP", "i want to kill myself", "STOP"
    ]
    [maya] = rows(session, Participant)
    assert maya.opted_out_at is not None and maya.paused_at is not None


def test_a_broken_edit_keeps_the_last_good_version_serving_and_names_the_line(
    tmp_path, caplog
):
    narratives = copy_narratives(tmp_path)
    good = live_programs(narratives)["daily-checkin"]
    break_encoding(narratives / "daily-checkin")
    with caplog.at_level(logging.ERROR):
        served = live_programs(narratives)
    assert served["daily-checkin"] is good  # still serving
    assert "positive-parenting" in served  # the other programs are untouched
    raw = (narratives / "daily-checkin" / "program.yaml").read_bytes()
    line = raw[: raw.index(b"\xe9")].count(b"\n") + 1
    assert f"daily-checkin/program.yaml:{line}: this file is not saved as UTF-8" in caplog.text


@pytest.mark.parametrize(
    "broken",
    [
        b"\xff\xfe garbage",
        b"title: x\nlevels: [",
    ],
)
def test_any_loading_error_is_reported_with_the_file_never_raised(tmp_path, broken):
    narratives = copy_narratives(tmp_path)
    (narratives / "daily-checkin" / "program.yaml").write_bytes(broken)
    catalog = live_programs(narratives)  # never raises
    assert "daily-checkin" not in catalog
    assert catalog.unavailable["daily-checkin"].startswith("daily-checkin/program.yaml")


def test_bot_check_names_a_file_that_is_not_utf8_instead_of_a_traceback(tmp_path):
    from click.testing import CliRunner

    from bot.tools.cli import main

    narratives = copy_narratives(tmp_path)
    break_encoding(narratives / "daily-checkin")
    result = CliRunner().invoke(main, ["check"], env={"NARRATIVES_DIR": str(narratives)})
    assert result.exit_code == 1
    assert "daily-checkin/program.yaml:" in result.output
    assert "not saved as UTF-8" in result.output
    assert "Traceback" not in result.output


# --- 2. A process that starts while a program is broken drops nothing -----------------------


def test_work_for_an_unloadable_program_waits_and_raises_one_alert(settings, engine, session,
                                                                   tmp_path):
    narratives = copy_narratives(tmp_path)
    program = load_programs(narratives)["positive-parenting"]
    with freeze_time("2026-06-01 12:00:00"):
        with session_scope(engine) as s:
            parent = enroll(session=s, phone=MAYA, program=program, timezone="UTC", via="cli")
            dad = enroll(session=s, phone=SAM, program=program, timezone="UTC", via="cli")
        break_encoding(narratives / "positive-parenting")
        catalog = live_programs(narratives)  # a fresh process: no good version ever loaded
        assert "positive-parenting" in catalog.unavailable
        outcome = evaluate_participant(engine=engine, programs=catalog,
                                       participant_id=parent.id)
        assert outcome.startswith("waiting")
        evaluate_participant(engine=engine, programs=catalog, participant_id=dad.id)
        sender = BatchSender(engine=engine, settings=settings, sender=SmsSender(settings),
                             limiter=None, programs=catalog)
        ids = claim_due(engine=engine, limit=10)
        assert ids
        result = sender.send_batch(ids)
        assert sorted(result.deferred) == sorted(ids) and not result.failed
    [maya, sam] = sorted(rows(session, Participant), key=lambda p: p.phone != MAYA)
    assert maya.next_evaluation_at is not None  # retried later, never cleared
    assert all(d.status == DeliveryStatus.SCHEDULED for d in rows(session, Delivery))
    [alert] = rows(session, Alert)
    assert alert.kind == "content" and "positive-parenting/program.yaml:" in alert.detail


def test_only_a_removed_program_ends_its_participants_schedules_with_the_reason(
    settings, engine, session, tmp_path
):
    narratives = copy_narratives(tmp_path)
    program = load_programs(narratives)["positive-parenting"]
    with session_scope(engine) as s:
        parent = enroll(session=s, phone=MAYA, program=program, timezone="UTC", via="cli")
    shutil.rmtree(narratives / "positive-parenting")
    catalog = live_programs(narratives)
    assert "positive-parenting" not in catalog.unavailable
    outcome = evaluate_participant(engine=engine, programs=catalog, participant_id=parent.id)
    assert outcome == "program positive-parenting was removed"
    [maya] = rows(session, Participant)
    assert maya.next_evaluation_at is None
    cancelled = rows(session, Delivery)
    assert cancelled and all(d.status == DeliveryStatus.CANCELLED for d in cancelled)
    assert all("positive-parenting was removed" in (d.error_message or "") for d in cancelled)
    assert rows(session, Alert) == []


# --- 3 and 4. The send gate: nothing after STOP, nothing twice -------------------------------


class HeldLimiter:
    """A rate limiter whose slot comes only when the test says so."""

    def __init__(self) -> None:
        self.waiting, self.slot = threading.Event(), threading.Event()

    def wait(self) -> float:
        self.waiting.set()
        assert self.slot.wait(20)
        return 0.0


def welcome_rows(session: Session) -> list[Delivery]:
    return rows(session, Delivery, Delivery.kind == "welcome", Delivery.via == "api")


def start_batch(stack, engine, limiter) -> tuple[BatchSender, threading.Thread, dict]:
    with session_scope(engine) as s:
        enroll(session=s, phone=SAM, program=load_programs(stack.settings.narratives_dir)[
            "daily-checkin"], timezone="UTC", via="cli")
    sender = BatchSender(engine=engine, settings=stack.settings, sender=SmsSender(stack.settings),
                         limiter=limiter, programs=live_programs(stack.settings.narratives_dir))
    ids = claim_due(engine=engine, limit=10)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(outcome=sender.send_batch(ids)))
    thread.start()
    assert limiter.waiting.wait(10)
    return sender, thread, result


def test_stop_while_a_message_waits_for_its_rate_slot_means_it_is_never_sent(
    stack, engine, session
):
    limiter = HeldLimiter()
    _, thread, result = start_batch(stack, engine, limiter)
    [waiting] = welcome_rows(session)
    assert waiting.status == DeliveryStatus.SENDING
    assert stack.text(SAM, "STOP").ok  # confirmed while the welcome waits
    limiter.slot.set()
    thread.join(20)
    bodies = [m.body for m in stack.outbound_to(SAM)]
    assert len(bodies) == 1 and "unsubscribed" in bodies[0]
    [welcome] = welcome_rows(session)
    assert welcome.status == DeliveryStatus.CANCELLED
    assert welcome.error_message == "not sent: participant opted out"
    assert result["outcome"].cancelled == [welcome.id]


def test_a_crisis_pause_while_a_message_waits_for_its_slot_stops_it(stack, engine, session):
    limiter = HeldLimiter()
    _, thread, _ = start_batch(stack, engine, limiter)
    assert stack.text(SAM, "i want to die").ok
    limiter.slot.set()
    thread.join(20)
    [safety] = [m.body for m in stack.outbound_to(SAM)]
    assert "988" in safety
    assert welcome_rows(session)[0].status == DeliveryStatus.CANCELLED


def test_a_claim_reconciled_while_its_worker_still_waits_is_sent_exactly_once(
    stack, engine, session
):
    limiter = HeldLimiter()
    _, thread, _ = start_batch(stack, engine, limiter)
    [waiting] = welcome_rows(session)
    # The claim timeout passes (the job was interrupted, its pool thread goes on waiting).
    later = now() + timedelta(seconds=stack.settings.claim_timeout_seconds + 1)
    assert claim_stale(engine=engine, limit=10, claim_timeout=timedelta(
        seconds=stack.settings.claim_timeout_seconds), moment=later) == [waiting.id]
    other = BatchSender(engine=engine, settings=stack.settings, sender=SmsSender(stack.settings),
                        limiter=None, programs=live_programs(stack.settings.narratives_dir))
    assert other.reconcile(waiting.id) == "resent"  # the provider never had it
    limiter.slot.set()  # the first worker's slot comes: its gate must refuse
    thread.join(20)
    assert stack.outbound_to(SAM) == []
    other.send_batch(claim_due(engine=engine, limit=10))
    assert len(stack.outbound_to(SAM)) == 1
    [welcome] = welcome_rows(session)
    assert welcome.status in (DeliveryStatus.ACCEPTED, DeliveryStatus.SENT,
                              DeliveryStatus.DELIVERED)


def test_rows_of_a_worker_that_stopped_beating_are_reconciled_before_the_claim_timeout(
    engine, session, settings
):
    program = load_programs(settings.narratives_dir)["daily-checkin"]
    with freeze_time("2026-06-01 12:00:00"):
        with session_scope(engine) as s:
            for phone, worker in ((SAM, "dead"), (MAYA, "alive")):
                p = enroll(session=s, phone=phone, program=program, timezone="UTC", via="cli")
                s.flush()
                welcome = s.exec(select(Delivery).where(Delivery.participant_id == p.id,
                                                        Delivery.kind == "welcome")).one()
                welcome.status, welcome.claimed_by = DeliveryStatus.SENDING, worker
                welcome.claimed_at = welcome.send_started_at = now()
                welcome.claim_token = f"token-{worker}"
                s.add(welcome)
            s.add(WorkerHeartbeat(worker_id="dead", beat_at=now() - timedelta(seconds=50)))
            s.add(WorkerHeartbeat(worker_id="alive", beat_at=now() - timedelta(seconds=5)))
        stale = claim_stale(engine=engine, limit=10, claim_timeout=timedelta(minutes=5))
    [dead] = rows(session, Delivery, col(Delivery.id).in_(stale))
    assert dead.claimed_by == "dead" and dead.claim_token is None


# --- 5. One question, one answer -------------------------------------------------------------


def ask(engine, settings, kind: str = "scale") -> int:
    program = load_programs(settings.narratives_dir)["daily-checkin"]
    with session_scope(engine) as s:
        p = enroll(session=s, phone=MAYA, program=program, timezone="UTC", via="cli",
                   welcome_now=False)
        s.flush()
        question = Delivery(participant_id=p.id, kind="event", due_at=now(), sent_at=now(),
                            status=DeliveryStatus.DELIVERED, body="How was today, 1-5?",
                            assessment={"type": kind, "min": 1, "max": 5} if kind == "scale"
                            else {"type": kind})
        s.add(question)
        s.flush()
        return question.id


def test_two_concurrent_replies_never_both_answer_one_question(engine, settings, session):
    question = ask(engine, settings)
    first_done, second_started = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def reply(body: str, sid: str, hold: bool) -> None:
        try:
            with session_scope(engine) as s:
                handle_inbound(session=s, settings=settings, programs={},
                               form=inbound_params(MAYA, body, sid))
                if hold:  # credited, not yet committed: the other reply comes in now
                    first_done.set()
                    second_started.wait(5)
        except BaseException as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    first = threading.Thread(target=reply, args=("4", "SMfirst", True))
    first.start()
    assert first_done.wait(10)
    second = threading.Thread(target=reply, args=("2", "SMsecond", False))
    second.start()
    second_started.set()
    first.join(10)
    second.join(10)
    assert errors == []
    answers = rows(session, Answer, Answer.delivery_id == question)
    assert [a.raw for a in answers] == ["4"]
    assert len(rows(session, InboundMessage)) == 2  # the second text is kept all the same


def test_a_timeout_never_overwrites_a_reply_that_came_first(engine, settings, session):
    from bot.care.outcomes import record_missing

    question = ask(engine, settings)
    with session_scope(engine) as s:
        handle_inbound(session=s, settings=settings, programs={},
                       form=inbound_params(MAYA, "3", "SMreply"))
    with session_scope(engine) as s:
        maya = s.exec(select(Participant)).one()
        recorded = record_missing(session=s, participant_id=maya.id, moment=now(), force=True)
    assert recorded == 0
    [answer] = rows(session, Answer, Answer.delivery_id == question)
    assert answer.value == 3 and not answer.missing


def test_a_typed_question_wins_a_reply_over_a_later_free_text_question(engine, settings, session):
    dose = ask(engine, settings, kind="yes_no")
    with session_scope(engine) as s:
        maya = s.exec(select(Participant)).one()
        s.add(Delivery(participant_id=maya.id, kind="event", due_at=now(),
                       sent_at=now() + timedelta(seconds=1), status=DeliveryStatus.DELIVERED,
                       body="What got in the way?", assessment={"type": "text"}))
    with freeze_time(now() + timedelta(minutes=1)), session_scope(engine) as s:
        handle_inbound(session=s, settings=settings, programs={},
                       form=inbound_params(MAYA, "Yes", "SMyes"))
    [answer] = rows(session, Answer)
    assert answer.delivery_id == dose and answer.value == 1.0


# --- 6. Crisis follow-up a person in crisis would expect -------------------------------------


def test_the_safety_reply_promises_no_contact_when_nobody_is_notified(text_bot):
    text_bot(MAYA, "JOIN")
    [reply] = text_bot(MAYA, "i want to kill myself").replies
    assert "988" in reply
    assert "reach out" not in reply and "will contact" not in reply and "has been told" not in reply


def test_every_text_after_a_crisis_is_kept_with_the_alert_and_answered_with_resources(
    text_bot, session
):
    with freeze_time("2026-06-01 12:00:00") as clock:
        text_bot(MAYA, "JOIN")
        text_bot(MAYA, "i cant do this anymore i want to die")
        clock.tick(timedelta(minutes=20))
        [again] = text_bot(MAYA, "is anyone there?").replies
        assert "988" in again and "Thanks for your message" not in again
        clock.tick(timedelta(minutes=1))
        assert text_bot(MAYA, "hello?").replies == []  # rate-limited, still kept
        clock.tick(timedelta(minutes=20))
        [third] = text_bot(MAYA, "hello??").replies
        assert "988" in third
    [alert] = rows(session, Alert)
    kept = rows(session, AlertMessage, AlertMessage.alert_id == alert.id)
    assert len(kept) == 3


def test_an_unknown_number_after_a_crisis_never_gets_the_join_menu(text_bot, session):
    with freeze_time("2026-06-01 12:00:00") as clock:
        text_bot(STRANGER, "i want to end my life")
        clock.tick(timedelta(minutes=20))
        [again] = text_bot(STRANGER, "hello? is anyone there").replies
        assert "988" in again and "JOIN" not in again and "To join" not in again
        clock.tick(timedelta(minutes=20))
        [after_join] = text_bot(STRANGER, "JOIN").replies
        assert "988" in after_join
    assert rows(session, Participant) == []
    assert len(rows(session, AlertMessage)) == 2


def test_start_after_a_crisis_pause_says_messages_stay_paused(text_bot, session):
    text_bot(MAYA, "JOIN")
    text_bot(MAYA, "i want to kill myself")
    text_bot(MAYA, "STOP")
    [reply] = text_bot(MAYA, "START").replies
    assert "paused until our team has been in touch" in reply
    [maya] = rows(session, Participant)
    assert maya.opted_out_at is None and maya.paused_at is not None
    assert [e.kind for e in rows(session, ConsentEvent)] == [
        "enrolled", "paused", "opted_out", "opted_in"
    ]


def test_start_right_after_crisis_language_is_answered_that_messages_stay_paused(text_bot):
    with freeze_time("2026-06-01 12:00:00") as clock:
        text_bot(MAYA, "JOIN")
        text_bot(MAYA, "i want to die")
        clock.tick(timedelta(minutes=1))  # inside the resources' repeat interval
        [reply] = text_bot(MAYA, "START").replies
    assert "paused until our team has been in touch" in reply and "988" in reply


def test_start_keeps_the_opt_out_in_the_consent_record(text_bot, session):
    text_bot(MAYA, "JOIN")
    text_bot(MAYA, "STOP")
    text_bot(MAYA, "START")
    events = rows(session, ConsentEvent)
    assert [(e.kind, e.via) for e in events] == [
        ("enrolled", "keyword"), ("opted_out", "STOP"), ("opted_in", "START")
    ]


def test_a_request_for_a_person_promises_no_call_back(text_bot):
    text_bot(MAYA, "JOIN")
    [reply] = text_bot(MAYA, "can i talk to a real person").replies
    assert "text you back" not in reply and "saved for the study team" in reply


# --- 12. Phone numbers never reach the logs --------------------------------------------------


def test_a_whole_journey_with_a_concurrent_double_join_logs_no_phone_number(
    engine, settings, session, caplog
):
    digits = "4155550123"
    entered = threading.Barrier(2)
    errors: list[BaseException] = []

    def join(sid: str) -> None:
        try:
            with session_scope(engine) as s:
                entered.wait(5)
                handle_inbound(session=s, settings=settings,
                               programs=live_programs(settings.narratives_dir),
                               form=inbound_params(MAYA, "JOIN", sid))
        except BaseException as exc:  # pragma: no cover - shown below
            errors.append(exc)

    with caplog.at_level(logging.DEBUG):
        threads = [threading.Thread(target=join, args=(f"SMjoin{i}",)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        for sid, body in (("SMhelp", "HELP"), ("SMcrisis", "i want to die"),
                          ("SMstop", "STOP"), ("SMstart", "START")):
            with session_scope(engine) as s:
                handle_inbound(session=s, settings=settings,
                               programs=live_programs(settings.narratives_dir),
                               form=inbound_params(MAYA, body, sid))
    assert errors == []
    assert len(rows(session, Participant)) == 1
    joins = rows(session, InboundMessage, col(InboundMessage.message_sid).like("SMjoin%"))
    assert len(joins) == 2 and all(m.reply for m in joins)  # neither text is lost
    assert digits not in caplog.text


def duplicate_number(engine) -> None:
    """A statement the database refuses, whose error names the number (PostgreSQL's DETAIL)."""
    with session_scope(engine) as s:
        s.add(Participant(phone=MAYA, program="x", timezone="UTC"))
        s.add(Participant(phone=MAYA, program="x", timezone="UTC"))
        s.flush()


def test_a_failed_statement_logged_with_its_traceback_shows_no_number(engine, caplog):
    from sqlalchemy.exc import IntegrityError

    from bot import logs

    logs.install()
    with caplog.at_level(logging.ERROR):
        try:
            duplicate_number(engine)
        except IntegrityError as exc:
            assert "parameters hidden" in str(exc)  # the engine never shows bound values
            logging.getLogger("bot.test").exception("enrolling %s failed", MAYA)
    assert "enrolling +•••••••0123 failed" in caplog.text
    assert "IntegrityError" in caplog.text
    assert "4155550123" not in caplog.text


@redacted_failures
def enroll_twice_job(database_url: str) -> None:
    from bot.store.db import get_engine

    duplicate_number(get_engine(database_url))


def test_a_failed_job_keeps_no_number_in_redis(engine, redis_conn):
    from rq import Queue, SimpleWorker
    from rq.job import Job

    queue = Queue("failing", connection=redis_conn)
    job = queue.enqueue(enroll_twice_job, engine.url.render_as_string(hide_password=False))
    SimpleWorker([queue], connection=redis_conn).work(burst=True)
    failed = Job.fetch(job.id, connection=redis_conn)
    assert failed.is_failed
    stored = failed.latest_result().exc_string
    assert "IntegrityError" in stored and "4155550123" not in stored
    for key in redis_conn.scan_iter():
        kind = redis_conn.type(key)
        if kind == b"hash":
            assert not any(b"4155550123" in v for v in redis_conn.hgetall(key).values())


def test_an_empty_catalog_still_answers_help_and_stop(engine, settings, session):
    program = load_programs(settings.narratives_dir)["daily-checkin"]
    with session_scope(engine) as s:
        enroll(session=s, phone=MAYA, program=program, timezone="UTC", via="cli")

    def failing() -> Catalog:
        raise RuntimeError("content store unreachable")

    for sid, body, expected in (("SM1", "HELP", "STOP"), ("SM2", "STOP", "unsubscribed")):
        with session_scope(engine) as s:
            result = handle_inbound(session=s, settings=settings, programs=failing,
                                    form=inbound_params(MAYA, body, sid))
        assert expected in result.replies[0]


# --- Also reported: the daily cap ------------------------------------------------------------


def test_state_questions_and_the_finished_message_count_against_the_daily_cap(
    engine, settings, session
):
    from bot.delivery.sending import _DayCounts

    program = load_programs(settings.narratives_dir)["daily-checkin"]
    with freeze_time("2026-06-01 12:00:00"):
        with session_scope(engine) as s:
            p = enroll(session=s, phone=MAYA, program=program, timezone="UTC", via="cli",
                       welcome_now=False)
            s.flush()
            for kind in ("state", "finished"):
                s.add(Delivery(participant_id=p.id, kind=kind, due_at=now(), sent_at=now(),
                               status=DeliveryStatus.DELIVERED, body="..."))
            s.add(Delivery(participant_id=p.id, kind="help", via="twiml", due_at=now(),
                           sent_at=now(), status=DeliveryStatus.ACCEPTED, body="..."))
        with Session(engine) as s:
            counts = _DayCounts(s, {p.id}, now())
            day = now().replace(hour=0)
            assert counts.count(p.id, day, day + timedelta(days=1)) == 2


def test_two_workers_never_both_pass_the_cap_for_one_participant(
    stack, engine, session, monkeypatch
):
    import bot.delivery.sending as sending

    settings = stack.settings.with_overrides(daily_message_cap=1)
    program = load_programs(settings.narratives_dir)["daily-checkin"]
    with session_scope(engine) as s:
        p = enroll(session=s, phone=SAM, program=program, timezone="UTC", via="cli",
                   welcome_now=False)
        s.flush()
        for text in ("first", "second"):
            s.add(Delivery(participant_id=p.id, kind="event", due_at=now(), body=text))
    ids = claim_due(engine=engine, limit=10)
    assert len(ids) == 2
    both_counted = threading.Barrier(2, timeout=1.0)
    original = sending._DayCounts

    class Racing(original):  # both workers read the day's count before either claims
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # Broken: the other worker waits on the participant's lock, as it should.
            with contextlib.suppress(threading.BrokenBarrierError):
                both_counted.wait()

    monkeypatch.setattr(sending, "_DayCounts", Racing)
    senders = [BatchSender(engine=engine, settings=settings, sender=SmsSender(settings),
                           limiter=None, programs=live_programs(settings.narratives_dir))
               for _ in ids]
    threads = [threading.Thread(target=sender.send_batch, args=([i],))
               for sender, i in zip(senders, ids, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(stack.outbound_to(SAM)) == 1
    statuses = sorted(d.status for d in rows(session, Delivery, Delivery.participant_id == p.id))
    assert statuses[-1] == DeliveryStatus.SCHEDULED  # the other waits for tomorrow


# --- 11. Rendering holds no locks ------------------------------------------------------------


def test_a_template_renders_outside_the_claim_transaction(stack, engine, session, monkeypatch):
    from sqlalchemy import text

    import bot.delivery.sending as sending

    with session_scope(engine) as s:
        enroll(session=s, phone=SAM, program=load_programs(stack.settings.narratives_dir)[
            "daily-checkin"], timezone="UTC", via="cli")
    locked: list[bool] = []
    real_render = sending.render

    def render_and_look(program, template, context):
        # While the template renders, a webhook must be able to take these rows at once.
        with engine.connect() as other:
            try:
                other.execute(text("SET lock_timeout = '200ms'"))
                other.execute(text("SELECT id FROM participant FOR UPDATE"))
                other.execute(text("SELECT id FROM delivery WHERE kind = 'welcome' FOR UPDATE"))
                locked.append(False)
            except Exception:
                locked.append(True)
            other.rollback()
        return real_render(program, template, context)

    monkeypatch.setattr(sending, "render", render_and_look)
    sender = BatchSender(engine=engine, settings=stack.settings, sender=SmsSender(stack.settings),
                         limiter=None, programs=live_programs(stack.settings.narratives_dir))
    outcome = sender.send_batch(claim_due(engine=engine, limit=10))
    assert locked == [False]
    assert len(outcome.sent) == 1 and len(stack.outbound_to(SAM)) == 1
