"""The dispatcher: every tick, claim due rows from SQL and put them on the queue.

Safe to run more than once at a time: claims are conditional updates (SKIP LOCKED on
PostgreSQL), and a row whose job was lost with Redis is claimed again from SQL.

On SIGTERM it ends the tick (between two rounds of claims when a backlog is being drained)
and exits within a second or so: every row it marked queued has its job on the queue, or is
back in the outbox when the queue refused it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from itertools import count

from rq import Queue
from sqlalchemy.engine import Engine

from bot import logs
from bot.care import hub
from bot.clock import now
from bot.delivery import outbox
from bot.delivery.gate import beat
from bot.delivery.provider import SmsSender
from bot.delivery.status import apply_unmatched
from bot.delivery.stopping import release_queued
from bot.people.escalation import notify_due
from bot.settings import Settings
from bot.store.db import session_scope
from worker import jobs

log = logging.getLogger(__name__)

JOB_SIZE = 50  # deliveries per job: enough to amortize a job, small enough to spread
# Each tick's sign of life (worker_heartbeat, which /healthz reads), and its number in the logs.
HEARTBEAT_ID = f"dispatcher:{socket.gethostname()[:12]}:{os.getpid()}"[:32]
_ticks = count(1)
STOP_CHECK_SECONDS = 0.2  # how often an idle dispatcher looks for a stop


@dataclass
class Tick:
    due: int = 0
    requeued: int = 0
    stale: int = 0
    callbacks: int = 0
    evaluations: int = 0
    notified: int = 0  # crisis alerts whose on-call people were told this tick


def _enqueue(engine: Engine, queue: Queue, ids: list[int]) -> None:
    """A job per JOB_SIZE rows; rows the queue refused (Redis down) go back to the outbox."""
    if not ids:
        return
    specs = [
        Queue.prepare_data(
            jobs.send_deliveries, args=(ids[i : i + JOB_SIZE],), result_ttl=0, failure_ttl=86400,
            timeout=300,
        )
        for i in range(0, len(ids), JOB_SIZE)
    ]
    try:
        queue.enqueue_many(specs)
    except Exception:
        # Whether or not the jobs got there: a second job for a row is harmless, a row left
        # queued without one waits REQUEUE_AFTER_SECONDS.
        with session_scope(engine) as session:
            release_queued(session=session, ids=ids)
        raise


def tick(
    *, engine: Engine, queue: Queue, settings: Settings,
    stopping: Callable[[], bool] = lambda: False,
) -> Tick:
    """One round: due rows, lost jobs, stale sends, early status callbacks. A backlog of due
    rows is claimed DISPATCH_BATCH_SIZE at a time until it is drained or `stopping()`."""
    logs.bind(tick=next(_ticks))
    result = Tick()
    while True:
        due = outbox.claim_due(engine=engine, limit=settings.dispatch_batch_size)
        _enqueue(engine, queue, due)
        result.due += len(due)
        if len(due) < settings.dispatch_batch_size or stopping():
            break
    lost = outbox.claim_lost(
        engine=engine, limit=settings.dispatch_batch_size,
        requeue_after=timedelta(seconds=settings.requeue_after_seconds),
    )
    _enqueue(engine, queue, lost)
    result.requeued = len(lost)
    stale = outbox.claim_stale(
        engine=engine,
        limit=settings.dispatch_batch_size,
        claim_timeout=timedelta(seconds=settings.claim_timeout_seconds),
        dead_after=timedelta(seconds=settings.worker_dead_after_seconds),
    )
    for delivery_id in stale:
        queue.enqueue(jobs.reconcile_delivery, delivery_id, result_ttl=0, failure_ttl=86400)
    result.stale = len(stale)
    evaluations = hub.claim_due(engine=engine, limit=settings.dispatch_batch_size)
    for i in range(0, len(evaluations), JOB_SIZE):
        queue.enqueue(jobs.evaluate_participants, evaluations[i : i + JOB_SIZE], result_ttl=0,
                      failure_ttl=86400, job_timeout=300)
    result.evaluations = len(evaluations)
    with session_scope(engine) as session:
        beat(session, HEARTBEAT_ID, now())
        result.callbacks = apply_unmatched(
            session=session, max_attempts=settings.max_send_attempts
        )
    result.notified = notify_due(engine, settings, now(), sms=SmsSender)
    return result


def run(*, engine: Engine, queue: Queue, settings: Settings, once: bool = False) -> None:
    """Tick every DISPATCH_INTERVAL_SECONDS until SIGTERM/SIGINT."""
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("dispatcher started (every %.1fs)", settings.dispatch_interval_seconds)
    while not stopping:
        started = time.monotonic()
        try:
            result = tick(engine=engine, queue=queue, settings=settings,
                          stopping=lambda: stopping)
            if result.due or result.requeued or result.stale or result.notified:
                log.info("dispatched %s", result)
        except Exception:
            # A database or Redis hiccup must not end the loop; SQL still holds every row.
            log.exception("dispatch tick failed; retrying")
        if once:
            return
        # In short naps, so a stop is seen at once however long the interval.
        while not stopping and (
            left := settings.dispatch_interval_seconds - (time.monotonic() - started)
        ) > 0:
            time.sleep(min(left, STOP_CHECK_SECONDS))
    log.info("dispatcher stopped")
