"""Every non-web process killed mid-send and Redis flushed: each welcome still goes out once.

Real processes (`bot worker`, `bot dispatcher`), real Redis and PostgreSQL, the sandbox as the
provider over HTTP. The recovery times are shortened through their settings so the test runs in
seconds; with the defaults (REQUEUE_AFTER_SECONDS=60, WORKER_DEAD_AFTER_SECONDS=45) the same
path takes about a minute.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlmodel import select

from bot.care.programs import load_programs
from bot.participants.enrollment import enroll
from bot.store.db import session_scope
from bot.store.models import Delivery, DeliveryStatus
from tests.conftest import wait_for

PHONES = [f"+1415555{2000 + i:04d}" for i in range(24)]
SENT = (DeliveryStatus.ACCEPTED, DeliveryStatus.SENT, DeliveryStatus.DELIVERED)


def start(command: str, settings, **extra: str) -> subprocess.Popen[bytes]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "TEND_ENV": "test",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "TWILIO_API_BASE_URL": settings.twilio_api_base_url,
        "PUBLIC_BASE_URL": settings.public_base_url,
        "NARRATIVES_DIR": str(settings.narratives_dir),
        "TEND_INSTANCE_DIR": str(settings.instance_dir),
        "QUEUE_NAME": settings.queue_name,
        "QUIET_HOURS_START": "08:00",
        "QUIET_HOURS_END": "08:00",
        "SEND_RATE_PER_SECOND": "8",
        "DISPATCH_INTERVAL_SECONDS": "0.2",
        **extra,
    }
    bot = Path(sys.executable).with_name("bot")
    return subprocess.Popen([str(bot), command], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def kill(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def welcomes(engine) -> list[Delivery]:
    with session_scope(engine) as session:
        return list(session.exec(select(Delivery).where(Delivery.kind == "welcome")))


def test_sigkill_of_every_worker_and_dispatcher_and_a_redis_flush_lose_and_repeat_nothing(
    stack, engine, redis_conn
):
    program = load_programs(stack.settings.narratives_dir)["daily-checkin"]
    with session_scope(engine) as session:
        for phone in PHONES:
            enroll(session=session, phone=phone, program=program, timezone="UTC", via="cli")
    # Three sends hang at the provider, which still takes them: killed in flight, they must be
    # found in its log, not sent again.
    stack.faults([{"delay": 1.5}] * 3)
    processes = [start("dispatcher", stack.settings), start("worker", stack.settings)]
    try:
        assert wait_for(lambda: sum(len(stack.outbound_to(p)) for p in PHONES) >= 4,
                        timeout=30)
    finally:
        kill(*processes)
    redis_conn.flushdb()
    left = [d for d in welcomes(engine) if d.status not in SENT]
    assert any(d.status == DeliveryStatus.SENDING for d in left)  # killed mid-send
    started = time.monotonic()
    fast = {"REQUEUE_AFTER_SECONDS": "2", "WORKER_DEAD_AFTER_SECONDS": "3"}
    processes = [start("dispatcher", stack.settings, **fast),
                 start("worker", stack.settings, **fast)]
    try:
        assert wait_for(lambda: all(d.status in SENT for d in welcomes(engine)), timeout=60,
                        sweeping=engine)
    finally:
        kill(*processes)
    assert time.monotonic() - started < 60
    assert [len(stack.outbound_to(phone)) for phone in PHONES] == [1] * len(PHONES)
