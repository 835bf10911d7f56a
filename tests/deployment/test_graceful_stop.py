"""A host restarts the worker and the dispatcher (SIGTERM, then SIGKILL about 30 s later):
each stops well within that, nothing is lost or sent twice, and the next process carries on at
once, with no wait for a claim timeout.

Real processes (`bot worker`, `bot dispatcher`) against the sandbox; every test ends by
counting what reached the provider (the sandbox's message log).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.clock import now
from bot.delivery.queues import delivery_queue
from bot.store.models import Delivery, DeliveryStatus, WorkerHeartbeat
from tests.conftest import ROOT, wait_for
from tests.delivery.test_faults import (
    SENT_ON,
    enroll_now,
    fresh,
    pending_faults,
    sent_to,
    tick,
    worker_process,
)
from worker import dispatcher

GRACE = 30.0  # what a host allows between SIGTERM and SIGKILL
# Participants, each enrolled by a coordinator with the welcome due at once.
PHONES = [f"+141555502{i:02d}" for i in range(20)]


@pytest.fixture
def started(stack, tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen, Path]]]:
    """Start `bot worker` (or `bot dispatcher`) with a folder and log of its own; none
    outlives the test."""
    processes: list[subprocess.Popen] = []

    def start(name: str, command: str = "worker", **env: str) -> tuple[subprocess.Popen, Path]:
        folder = tmp_path / name
        folder.mkdir()
        starter = worker_process if command == "worker" else dispatcher_process
        processes.append(starter(stack, folder, **env))
        return processes[-1], folder / f"{command}.log"

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def stop(process: subprocess.Popen, log: Path) -> float:
    """SIGTERM `process` as a host does; the seconds it took to exit (it must exit 0)."""
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"running {GRACE:.0f} s after SIGTERM:\n{log.read_text()}") from None
    assert process.returncode == 0, log.read_text()[-3000:]
    return time.monotonic() - signalled


def assert_released(session: Session, ids: list[int]) -> None:
    """Back in the outbox: scheduled, due now, no claim, the attempt not counted."""
    for delivery_id in ids:
        row = fresh(session, delivery_id)
        assert row.status == DeliveryStatus.SCHEDULED, (delivery_id, row.status)
        assert row.due_at <= now() and row.attempts == 0
        assert (row.claimed_at, row.claim_token, row.claimed_by) == (None, None, None)


def assert_sent_once_and_recorded(stack, session: Session, ids_by_phone: dict[str, int]) -> None:
    """Each reached the provider once, and its row holds that message's sid."""
    assert wait_for(lambda: all(fresh(session, i).provider_sid for i in ids_by_phone.values()))
    for phone, delivery_id in ids_by_phone.items():
        [message] = sent_to(stack, phone)
        row = fresh(session, delivery_id)
        assert row.provider_sid == message.sid and row.status in SENT_ON, phone


def test_a_worker_stopped_while_its_batch_waits_for_rate_slots_releases_the_rest_at_once(
    stack, engine, redis_conn, session, started
):
    ids = dict(zip(PHONES, enroll_now(engine, stack.settings, *PHONES), strict=True))
    assert tick(engine, redis_conn).due == 20  # one job of 20
    # Two a second: the batch would take ten seconds; stopped after its first two messages.
    worker, log = started("first", SEND_RATE_PER_SECOND="2")
    assert wait_for(lambda: sum(len(sent_to(stack, p)) for p in PHONES) >= 2, timeout=15), (
        log.read_text())
    assert stop(worker, log) < 2.0  # not the nine seconds its other 18 messages would take
    sent = {p: i for p, i in ids.items() if sent_to(stack, p)}
    unsent = [i for p, i in ids.items() if p not in sent]
    assert 2 <= len(sent) <= 4 and len(sent) + len(unsent) == 20
    assert_sent_once_and_recorded(stack, session, sent)
    assert_released(session, unsent)
    # The next worker sends them at once: no claim timeout, and the stopped batch holds the
    # sender's rate for two seconds at most (a fast worker shows it, sending right away).
    assert tick(engine, redis_conn).due == len(unsent)
    begun = time.monotonic()
    second, second_log = started("second")
    assert wait_for(lambda: all(sent_to(stack, p) for p in PHONES), timeout=10)
    assert time.monotonic() - begun < 4.0, second_log.read_text()
    assert_sent_once_and_recorded(stack, session, ids)
    stop(second, second_log)


def test_a_worker_stopped_during_a_provider_call_finishes_and_records_it_and_takes_no_new_job(
    stack, engine, redis_conn, session, started
):
    batch = dict(zip(PHONES[:3], enroll_now(engine, stack.settings, *PHONES[:3]), strict=True))
    assert tick(engine, redis_conn).due == 3  # the first job
    later = dict(zip(PHONES[3:4], enroll_now(engine, stack.settings, *PHONES[3:4]), strict=True))
    assert tick(engine, redis_conn).due == 1  # a second job, behind it
    stack.faults([{"delay": 2.0}])  # the first create hangs two seconds, then is accepted
    worker, log = started("first", SEND_CONCURRENCY="1")
    assert wait_for(lambda: pending_faults(stack) == [], timeout=15), log.read_text()
    time.sleep(0.2)  # inside the provider call
    took = stop(worker, log)
    assert 1.0 < took < 4.0  # it waited for the call to return, and no longer
    [in_flight] = [p for p in batch if sent_to(stack, p)]
    assert_sent_once_and_recorded(stack, session, {in_flight: batch[in_flight]})
    assert_released(session, [i for p, i in batch.items() if p != in_flight])
    # The second job was never taken: still on the queue, its row still queued for it.
    queue = delivery_queue(stack.settings, redis_conn)
    assert queue.count == 1
    assert fresh(session, later[PHONES[3]]).status == DeliveryStatus.QUEUED
    # It said it was leaving: a row it might have left in sending is reconciled at once.
    gone = fresh(session, batch[in_flight]).claimed_by
    assert gone and session.get(WorkerHeartbeat, gone) is None
    assert tick(engine, redis_conn).due == 2
    begun = time.monotonic()
    second, second_log = started("second")
    assert wait_for(lambda: all(sent_to(stack, p) for p in PHONES[:4]), timeout=10)
    assert time.monotonic() - begun < 4.0, second_log.read_text()
    assert_sent_once_and_recorded(stack, session, {**batch, **later})
    stop(second, second_log)


def test_a_worker_stopped_between_jobs_exits_at_once_and_the_next_takes_the_queue(
    stack, engine, redis_conn, session, started
):
    first = dict(zip(PHONES[:1], enroll_now(engine, stack.settings, *PHONES[:1]), strict=True))
    tick(engine, redis_conn)
    worker, log = started("first")
    assert wait_for(lambda: fresh(session, first[PHONES[0]]).provider_sid is not None,
                    timeout=15), log.read_text()
    time.sleep(0.3)  # the job is done: waiting for the next one
    assert stop(worker, log) < 1.5
    later = dict(zip(PHONES[1:3], enroll_now(engine, stack.settings, *PHONES[1:3]), strict=True))
    assert tick(engine, redis_conn).due == 2
    second, second_log = started("second")
    assert wait_for(lambda: all(sent_to(stack, p) for p in PHONES[:3]), timeout=10), (
        second_log.read_text())
    assert_sent_once_and_recorded(stack, session, {**first, **later})
    stop(second, second_log)


# --- The dispatcher -------------------------------------------------------------------------


def dispatcher_process(stack, tmp_path: Path, **extra: str) -> subprocess.Popen:
    """`bot dispatcher` in its own process, wired to this test's database and Redis."""
    settings = stack.settings
    env = {
        **os.environ, "TEND_ENV": "test", "TEND_INSTANCE_DIR": str(tmp_path / "instance"),
        "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
        "TWILIO_API_BASE_URL": settings.twilio_api_base_url,
        "PUBLIC_BASE_URL": settings.public_base_url,
        "NARRATIVES_DIR": str(settings.narratives_dir), "QUEUE_NAME": settings.queue_name,
        **extra,
    }
    with (tmp_path / "dispatcher.log").open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "bot.tools.cli", "dispatcher"],
                                env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def backlog(engine: Engine, participant_id: int, count: int) -> None:
    """`count` reminders already due for one participant, as a large import would leave."""
    due = now() - timedelta(minutes=1)
    with engine.begin() as connection:
        connection.execute(insert(Delivery), [
            {"participant_id": participant_id, "kind": "reminder", "body": f"reminder {n}",
             "due_at": due, "status": DeliveryStatus.SCHEDULED, "via": "api", "attempts": 0,
             "context": {}}
            for n in range(count)
        ])


def ids_in_jobs(queue: Queue) -> set[int]:
    return {i for job in queue.get_jobs() for i in job.args[0]}


def test_a_dispatcher_stopped_while_draining_a_backlog_exits_at_once_leaving_no_row_without_a_job(
    stack, engine, redis_conn, session, started
):
    [welcome] = enroll_now(engine, stack.settings, PHONES[0])
    backlog(engine, fresh(session, welcome).participant_id, 4000)
    process, log = started("dispatcher", "dispatcher", DISPATCH_BATCH_SIZE="10")
    queued = select(Delivery.id).where(Delivery.status == DeliveryStatus.QUEUED)
    assert wait_for(lambda: len(session.exec(queued).all()) >= 50, timeout=15), log.read_text()
    assert stop(process, log) < 2.0
    rows = session.exec(select(Delivery.status, Delivery.id)).all()
    assert {status for status, _ in rows} <= {DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED}
    queued_ids = {i for status, i in rows if status == DeliveryStatus.QUEUED}
    assert len(queued_ids) < 4001  # it stopped midway, between two rounds of claims
    # Every row it marked queued has its job on the queue, and every job's rows are queued.
    assert ids_in_jobs(delivery_queue(stack.settings, redis_conn)) == queued_ids
    assert "dispatcher stopped" in log.read_text()


def test_an_idle_dispatcher_stops_at_once_however_long_its_interval(started):
    process, log = started("dispatcher", "dispatcher", DISPATCH_INTERVAL_SECONDS="30")
    assert wait_for(lambda: "dispatcher started" in log.read_text(), timeout=15)
    time.sleep(0.5)  # asleep until its next tick, half a minute away
    assert stop(process, log) < 1.5


def test_rows_the_queue_refuses_go_back_to_the_outbox_rather_than_wait_queued_without_a_job(
    stack, engine, session
):
    [welcome] = enroll_now(engine, stack.settings, PHONES[0])
    nowhere = redis.Redis(port=1, retry=Retry(NoBackoff(), 0))  # Redis down: refused at once
    unreachable = Queue(stack.settings.queue_name, connection=nowhere)
    with pytest.raises(redis.ConnectionError):
        dispatcher.tick(engine=engine, queue=unreachable, settings=stack.settings)
    row = fresh(session, welcome)
    assert row.status == DeliveryStatus.SCHEDULED and row.claimed_at is None
