"""Delivery under faults: Redis flushed, workers killed, the provider erring, slow or refusing.

Every test ends by counting what reached the provider (the sandbox's message log): each
delivery exactly once, or exactly as often as the design says (a carrier retry is a new try).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import requests
from freezegun import freeze_time
from rq import SimpleWorker
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.care.programs import load_programs
from bot.clock import now
from bot.delivery.provider import SmsSender
from bot.delivery.queues import delivery_queue
from bot.participants.enrollment import enroll
from bot.settings import Settings
from bot.store.db import session_scope
from bot.store.models import FINAL_STATUSES, Delivery, DeliveryStatus, Participant
from tests.conftest import wait_for
from worker import context, dispatcher, jobs

ROOT = Path(__file__).resolve().parents[2]

# Participants, each enrolled by a coordinator with the welcome due at once.
ANA = "+14155550161"  # the one whose worker dies, whose carrier is congested
BEN = "+14155550162"  # enrolled in the same minute as Ana: same batch
CARA = "+14155550163"
SENT_ON = (DeliveryStatus.ACCEPTED, DeliveryStatus.SENT, DeliveryStatus.DELIVERED)


def enroll_now(engine: Engine, settings: Settings, *phones: str) -> list[int]:
    """Enroll each phone in daily-checkin; returns their welcome deliveries' ids."""
    program = load_programs(settings.narratives_dir)["daily-checkin"]
    with session_scope(engine) as session:
        people = [
            enroll(session=session, phone=phone, program=program, timezone="UTC", via="cli")
            for phone in phones
        ]
        session.flush()
        return [welcome(session, person.id).id for person in people]


def welcome(session: Session, participant_id: int | None) -> Delivery:
    return session.exec(
        select(Delivery).where(
            Delivery.participant_id == participant_id, Delivery.kind == "welcome",
            Delivery.retry_of == None,  # noqa: E711
        )
    ).one()


def fresh(session: Session, delivery_id: int) -> Delivery:
    session.expire_all()
    found = session.get(Delivery, delivery_id)
    assert found is not None
    return found


def tick(engine: Engine, redis_conn) -> dispatcher.Tick:
    settings = context.current().settings
    return dispatcher.tick(
        engine=engine, queue=delivery_queue(settings, redis_conn), settings=settings
    )


def work(redis_conn) -> None:
    queue = delivery_queue(context.current().settings, redis_conn)
    SimpleWorker([queue], connection=redis_conn).work(burst=True)


def deliver(engine: Engine, redis_conn) -> dispatcher.Tick:
    """One dispatcher tick, then a worker until the queue is empty."""
    result = tick(engine, redis_conn)
    work(redis_conn)
    return result


def sent_to(stack, phone: str) -> list:
    return stack.outbound_to(phone)


def pending_faults(stack) -> list:
    return requests.get(f"{stack.sandbox.url}/sandbox/faults", timeout=5).json()["faults"]


@contextmanager
def travelled(by: timedelta) -> Iterator[None]:
    """Run the block `by` from now, with the clock still running."""
    with freeze_time(now() + by, tick=True):
        yield


def claim_timeout(stack) -> timedelta:
    return timedelta(seconds=stack.settings.claim_timeout_seconds + 1)


# --- Redis loses its jobs -------------------------------------------------------------------


def test_a_flushed_redis_loses_nothing_the_next_tick_requeues_from_sql_and_each_is_sent_once(
    stack, engine, redis_conn, session
):
    phones = [f"+1415555017{i}" for i in range(5)]
    ids = enroll_now(engine, stack.settings, *phones)
    assert tick(engine, redis_conn).due == 5
    redis_conn.flushdb()  # the queued jobs are gone; SQL still says "queued"
    assert tick(engine, redis_conn).requeued == 0  # too soon to presume them lost
    work(redis_conn)
    assert all(sent_to(stack, phone) == [] for phone in phones)
    with travelled(timedelta(seconds=stack.settings.requeue_after_seconds + 1)):
        assert tick(engine, redis_conn).requeued == 5
        work(redis_conn)
        assert tick(engine, redis_conn).requeued == 0
        work(redis_conn)
    assert [len(sent_to(stack, phone)) for phone in phones] == [1] * 5
    assert all(fresh(session, i).status in SENT_ON for i in ids)


def test_rows_queued_twice_and_taken_by_two_workers_at_the_same_moment_are_sent_once(
    stack, engine, redis_conn, session
):
    phones = [f"+1415555018{i}" for i in range(8)]
    ids = enroll_now(engine, stack.settings, *phones)
    assert tick(engine, redis_conn).due == 8
    # The dispatcher presumed the first job lost and queued the same rows again; two workers
    # pick up one job each at the same moment (the job function, as RQ would call it).
    start = threading.Barrier(2)
    outcomes: list[dict[str, int]] = []

    def run() -> None:
        start.wait()
        outcomes.append(jobs.send_deliveries(ids))

    workers = [threading.Thread(target=run) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert sum(outcome.get("sent", 0) for outcome in outcomes) == 8
    assert [len(sent_to(stack, phone)) for phone in phones] == [1] * 8
    assert all(fresh(session, i).status in SENT_ON for i in ids)


# --- A worker killed mid-send ---------------------------------------------------------------


def worker_process(stack, tmp_path: Path, **extra: str) -> subprocess.Popen:
    """`bot worker` in its own process, wired to this test's database, Redis and sandbox."""
    settings = stack.settings
    env = {
        **os.environ,
        "TEND_ENV": "test",
        "TEND_INSTANCE_DIR": str(tmp_path / "worker-instance"),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "TWILIO_API_BASE_URL": settings.twilio_api_base_url,
        "PUBLIC_BASE_URL": settings.public_base_url,
        "NARRATIVES_DIR": str(settings.narratives_dir),
        "QUEUE_NAME": settings.queue_name,
        "QUIET_HOURS_START": "08:00",
        "QUIET_HOURS_END": "08:00",
        "SEND_RATE_PER_SECOND": "1000",
        **extra,
    }
    with (tmp_path / "worker.log").open("wb") as log:  # a file: a full pipe would block it
        return subprocess.Popen(
            [sys.executable, "-m", "bot.tools.cli", "worker"], env=env, cwd=ROOT,
            stdout=log, stderr=subprocess.STDOUT,
        )


def kill_inside_the_provider_call(
    stack, process: subprocess.Popen, session: Session, ids: list[int], log: Path
) -> None:
    """SIGKILL the worker once it has claimed `ids` and its create hangs at the provider."""
    try:
        assert wait_for(
            lambda: all(fresh(session, i).status == DeliveryStatus.SENDING for i in ids),
            timeout=20,
        ), f"the worker never claimed the batch:\n{log.read_text()[-3000:]}"
        assert wait_for(lambda: pending_faults(stack) == []), "the create never reached it"
        time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL


def test_a_worker_killed_between_sending_and_recording_the_sid_is_reconciled_not_resent(
    stack, engine, redis_conn, session, tmp_path
):
    [ana] = enroll_now(engine, stack.settings, ANA)
    stack.faults([{"delay": 1.0}])  # the provider takes its time, then accepts the message
    tick(engine, redis_conn)
    worker = worker_process(stack, tmp_path)
    kill_inside_the_provider_call(stack, worker, session, [ana], tmp_path / "worker.log")
    assert wait_for(lambda: len(sent_to(stack, ANA)) == 1)  # it went out; nobody knows its sid
    assert fresh(session, ana).provider_sid is None
    assert tick(engine, redis_conn).stale == 0  # a slow send is not presumed dead
    with travelled(claim_timeout(stack)):
        assert tick(engine, redis_conn).stale == 1
        work(redis_conn)
        deliver(engine, redis_conn)
        [message] = sent_to(stack, ANA)
        settled = fresh(session, ana)
        assert settled.provider_sid == message.sid and settled.attempts == 1
        # The sandbox's callbacks for the unknown sid were held, and applied once it was known.
        # (Still on the travelled clock: a callback may have been received on it, and the sweep
        # applies what was received before its own now.)
        assert wait_for(lambda: fresh(session, ana).status == DeliveryStatus.DELIVERED,
                        sweeping=engine)


def test_a_worker_killed_between_claiming_a_batch_and_sending_it_loses_and_repeats_nothing(
    stack, engine, redis_conn, session, tmp_path
):
    ids = enroll_now(engine, stack.settings, ANA, BEN)
    stack.faults([{"delay": 1.0}])  # whichever goes first hangs; the other waits its turn
    tick(engine, redis_conn)
    worker = worker_process(stack, tmp_path, SEND_CONCURRENCY="1")
    kill_inside_the_provider_call(stack, worker, session, ids, tmp_path / "worker.log")
    assert wait_for(lambda: len(sent_to(stack, ANA)) + len(sent_to(stack, BEN)) == 1)
    first = ANA if sent_to(stack, ANA) else BEN  # sent, sid never recorded
    second = BEN if first == ANA else ANA  # claimed, never sent
    with travelled(claim_timeout(stack)):
        assert tick(engine, redis_conn).stale == 2
        work(redis_conn)  # reconcile: one found at the provider, one not
        assert tick(engine, redis_conn).due == 1
        work(redis_conn)
        assert deliver(engine, redis_conn).due == 0
    assert len(sent_to(stack, ANA)) == 1 and len(sent_to(stack, BEN)) == 1
    by_phone = {
        person.phone: welcome(session, person.id)
        for person in session.exec(select(Participant)).all()
    }
    assert by_phone[first].attempts == 1  # found, not sent again
    assert by_phone[second].attempts == 2  # claimed once, then sent once
    for phone in (ANA, BEN):
        assert by_phone[phone].provider_sid == sent_to(stack, phone)[0].sid


# --- The provider errs ----------------------------------------------------------------------


def test_rate_limits_and_server_errors_are_retried_with_growing_backoff_and_sent_once(
    stack, engine, redis_conn, session
):
    ana, ben = enroll_now(engine, stack.settings, ANA, BEN)
    stack.faults([{"status": 429, "code": 20429}], to=ANA)  # then success
    stack.faults([{"status": 500}, {"status": 500}], to=BEN)  # twice, then success
    waits: dict[int, list[timedelta]] = {ana: [], ben: []}
    with freeze_time(now(), tick=True) as clock:
        for _ in range(3):
            started = now()
            deliver(engine, redis_conn)
            for delivery_id in (ana, ben):
                row = fresh(session, delivery_id)
                if row.status == DeliveryStatus.SCHEDULED:
                    waits[delivery_id].append(row.due_at - started)
            assert deliver(engine, redis_conn).due == 0  # nothing before its time
            clock.tick(max(w[-1] for w in waits.values()) + timedelta(seconds=1))
        assert deliver(engine, redis_conn).due == 0
    # 30 s, then 60 s (plus however long the worker took to get there).
    seconds = {key: [int(w.total_seconds()) for w in value] for key, value in waits.items()}
    assert [len(seconds[ana]), len(seconds[ben])] == [1, 2]
    assert 30 <= seconds[ana][0] <= 32 and 30 <= seconds[ben][0] <= 32, seconds
    assert 60 <= seconds[ben][1] <= 62, seconds
    assert len(sent_to(stack, ANA)) == 1 and len(sent_to(stack, BEN)) == 1
    assert fresh(session, ana).attempts == 2 and fresh(session, ben).attempts == 3
    assert fresh(session, ana).status in SENT_ON and fresh(session, ben).status in SENT_ON


def test_retryable_failures_stop_at_the_attempt_bound_and_fail_the_delivery(
    stack, engine, redis_conn, session
):
    context.use(stack.settings.with_overrides(max_send_attempts=3))
    [ana] = enroll_now(engine, stack.settings, ANA)
    stack.faults([{"status": 503}] * 4)
    with freeze_time(now(), tick=True) as clock:
        for _ in range(5):
            deliver(engine, redis_conn)
            clock.tick(timedelta(hours=1))
    failed = fresh(session, ana)
    assert failed.status == DeliveryStatus.FAILED and failed.attempts == 3
    assert failed.error_code == 20503
    assert len(pending_faults(stack)) == 1  # a fourth call never happened
    assert sent_to(stack, ANA) == []
    person = session.get(Participant, failed.participant_id)
    assert person is not None and person.receives_automated_content  # the provider's trouble


def test_a_timeout_is_reconciled_with_the_provider_log_never_resent_blindly(
    stack, engine, redis_conn, session
):
    impatient = context.use(stack.settings)
    impatient.sender = SmsSender(stack.settings, timeout=0.5)
    ana, ben = enroll_now(engine, stack.settings, ANA, BEN)
    stack.faults([{"delay": 1.0}], to=ANA)  # longer than the client waits; accepted after all
    stack.faults([{"delay": 1.0, "status": 503}], to=BEN)  # as long, and then nothing created
    deliver(engine, redis_conn)
    assert {fresh(session, ana).status, fresh(session, ben).status} == {DeliveryStatus.SENDING}
    assert wait_for(lambda: len(sent_to(stack, ANA)) == 1)
    time.sleep(0.3)
    assert sent_to(stack, BEN) == []
    assert deliver(engine, redis_conn).stale == 0  # not yet: the call might be running
    with travelled(claim_timeout(stack)):
        assert tick(engine, redis_conn).stale == 2
        work(redis_conn)  # Ana's is found at the provider; Ben's is due again
        assert deliver(engine, redis_conn).due == 1
        assert deliver(engine, redis_conn).due == 0
    [to_ana], [to_ben] = sent_to(stack, ANA), sent_to(stack, BEN)
    assert fresh(session, ana).provider_sid == to_ana.sid and fresh(session, ana).attempts == 1
    assert fresh(session, ben).provider_sid == to_ben.sid and fresh(session, ben).attempts == 2


def person_of(session: Session, delivery_id: int) -> Participant:
    session.expire_all()
    person = session.get(Participant, fresh(session, delivery_id).participant_id)
    assert person is not None
    return person


def pending(session: Session, person: Participant) -> list[Delivery]:
    return list(session.exec(
        select(Delivery).where(
            Delivery.participant_id == person.id,
            col(Delivery.status).in_([DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED]),
        )
    ).all())


PERMANENT = {  # number -> the error its first message meets
    "+14155550164": {"status": 400, "code": 21211},  # refused at create: not a valid number
    "+14155550165": {"callback_status": "undelivered", "code": 30005},  # unknown handset
    "+14155550166": {"callback_status": "undelivered", "code": 30006},  # landline
}


def test_a_permanent_error_fails_the_delivery_flags_the_participant_and_cancels_the_rest(
    stack, engine, redis_conn, session
):
    ids = dict(zip(PERMANENT, enroll_now(engine, stack.settings, *PERMANENT), strict=True))
    for phone, fault in PERMANENT.items():
        stack.faults([fault], to=phone)
    deliver(engine, redis_conn)
    finals = (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED)
    for phone, fault in PERMANENT.items():
        assert wait_for(
            lambda i=ids[phone]: fresh(session, i).status in finals, sweeping=engine
        ), phone
        assert fresh(session, ids[phone]).error_code == fault["code"]
        person = person_of(session, ids[phone])
        assert person.undeliverable_at is not None
        assert str(fault["code"]) in (person.undeliverable_reason or "")
        assert pending(session, person) == []  # the week's plan is cancelled
    assert session.exec(select(Delivery).where(col(Delivery.retry_of).is_not(None))).all() == []
    with travelled(timedelta(days=8)):
        deliver(engine, redis_conn)
    assert [len(sent_to(stack, phone)) for phone in PERMANENT] == [0, 1, 1]


def test_a_carrier_opt_out_at_create_or_by_callback_opts_out_and_nothing_more_is_sent(
    stack, engine, redis_conn, session
):
    ana, ben = enroll_now(engine, stack.settings, ANA, BEN)
    stack.faults([{"status": 400, "code": 21610}], to=ANA)
    stack.faults([{"callback_status": "failed", "code": 21610}], to=BEN)
    deliver(engine, redis_conn)
    assert wait_for(lambda: person_of(session, ben).opted_out_at is not None, sweeping=engine)
    assert person_of(session, ana).opted_out_at is not None
    with travelled(timedelta(days=8)):
        deliver(engine, redis_conn)
    assert len(sent_to(stack, ANA)) == 0 and len(sent_to(stack, BEN)) == 1
    assert pending(session, person_of(session, ana)) == []
    assert pending(session, person_of(session, ben)) == []


def test_a_transient_carrier_failure_is_retried_once_as_a_new_delivery_after_a_backoff(
    stack, engine, redis_conn, session
):
    faults = {
        ANA: {"callback_status": "undelivered", "code": 30003},  # handset off, out of coverage
        BEN: {"callback_status": "failed", "code": 30008},  # the carrier's unknown error
    }
    ids = dict(zip(faults, enroll_now(engine, stack.settings, *faults), strict=True))
    for phone, fault in faults.items():
        stack.faults([fault], to=phone)
    deliver(engine, redis_conn)
    retries = {}
    for phone, fault in faults.items():
        assert wait_for(
            lambda i=ids[phone], c=fault["code"]: fresh(session, i).error_code == c, sweeping=engine
        )
        failed = fresh(session, ids[phone])
        retry = session.exec(select(Delivery).where(Delivery.retry_of == failed.id)).one()
        assert retry.body == failed.body and retry.kind == failed.kind
        assert retry.status == DeliveryStatus.SCHEDULED and retry.attempts == failed.attempts
        assert timedelta(seconds=25) < retry.due_at - now() <= timedelta(seconds=30)
        retries[phone] = retry.id
    assert deliver(engine, redis_conn).due == 0  # not before its backoff
    with travelled(timedelta(seconds=31)):
        assert deliver(engine, redis_conn).due == 2
        for retry_id in retries.values():
            assert wait_for(
                lambda i=retry_id: fresh(session, i).status == DeliveryStatus.DELIVERED,
                sweeping=engine,
            )
        deliver(engine, redis_conn)
    for phone, retry_id in retries.items():
        first, second = sent_to(stack, phone)  # the same text once more, and only once more
        assert first.body == second.body
        assert fresh(session, retry_id).attempts == 2
        assert person_of(session, retry_id).receives_automated_content


def test_carrier_retries_stop_at_the_attempt_bound(stack, engine, redis_conn, session):
    context.use(stack.settings.with_overrides(max_send_attempts=2))
    [ana] = enroll_now(engine, stack.settings, ANA)
    person = person_of(session, ana)
    stack.faults([{"callback_status": "undelivered", "code": 30003}] * 3)

    def welcomes() -> list[Delivery]:
        session.expire_all()
        return list(session.exec(
            select(Delivery).where(
                Delivery.participant_id == person.id, Delivery.kind == "welcome"
            )
        ).all())

    def settled() -> bool:  # every try has its final status, or waits for its time
        return all(d.status in FINAL_STATUSES or d.status == DeliveryStatus.SCHEDULED
                   for d in welcomes())

    with freeze_time(now(), tick=True) as clock:
        for _ in range(4):
            deliver(engine, redis_conn)
            assert wait_for(settled, sweeping=engine)
            clock.tick(timedelta(hours=1))
    assert len(sent_to(stack, ANA)) == 2  # the first try and one retry
    chain = welcomes()
    assert all(d.status in (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED) for d in chain)
    assert max(d.attempts for d in chain) == 2


def test_a_retry_left_in_sending_by_a_crash_is_not_mistaken_for_the_original_it_repeats(
    stack, engine, redis_conn, session
):
    [ana] = enroll_now(engine, stack.settings, ANA)
    stack.faults([{"callback_status": "undelivered", "code": 30003}])
    deliver(engine, redis_conn)
    assert wait_for(
        lambda: fresh(session, ana).status == DeliveryStatus.UNDELIVERED, sweeping=engine
    )
    retry_id = session.exec(select(Delivery.id).where(Delivery.retry_of == ana)).one()
    with freeze_time(now() + timedelta(seconds=31), tick=True) as clock:
        assert tick(engine, redis_conn).due == 1
        redis_conn.flushdb()
        # As a worker killed after claiming it leaves it: sending, body stored, no sid.
        retry = fresh(session, retry_id)
        retry.status, retry.attempts = DeliveryStatus.SENDING, retry.attempts + 1
        retry.send_started_at = retry.claimed_at = now()
        session.add(retry)
        session.commit()
        clock.tick(claim_timeout(stack))
        assert tick(engine, redis_conn).stale == 1
        work(redis_conn)  # the provider holds the same text, but that was the original
        assert deliver(engine, redis_conn).due == 1
    original, again = sent_to(stack, ANA)
    assert original.body == again.body
    assert fresh(session, ana).provider_sid == original.sid
    assert fresh(session, retry_id).provider_sid == again.sid
