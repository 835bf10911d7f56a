"""The scale-out rehearsal: the processes a host runs after `heroku ps:scale web=2 worker=3
dispatcher=2`, on PostgreSQL and a Redis of their own, deliver scheduled messages while one
worker is SIGKILLed and Redis is restarted (its queue lost) midway. Like a host, the rehearsal
starts again any process that exits. It checks that every message went out exactly once and
that the send rate held across workers, and prints the time to drain and each worker's share.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.clock import now
from bot.tools.bench import fixtures
from bot.tools.bench.stage import BenchError, Child, Stage, free_port, port_open, wait_until

# The failure handling the rehearsal relies on, shorter than production's defaults so a run
# takes a minute; each is printed with the figures.
TIMINGS = {"WORKER_DEAD_AFTER_SECONDS": "10", "REQUEUE_AFTER_SECONDS": "10",
           "CLAIM_TIMEOUT_SECONDS": "60", "DISPATCH_INTERVAL_SECONDS": "0.5"}
POLL = 0.25
# A batch reserves at most two seconds of rate slots ahead; when Redis loses the reservations,
# slots handed out anew may overlap those for this long (three workers' worth).
AFTER_RESTART = 6.0


@dataclass
class Rehearsal:
    messages: int
    rate: float
    drain_seconds: float = 0.0
    sent_once: int = 0
    sent_twice: int = 0
    missing: int = 0
    max_in_a_second: int = 0
    max_in_a_second_steady: int = 0  # outside the seconds after Redis lost the slots it held
    restarted_at: datetime | None = None
    achieved_rate: float = 0.0
    shares: list[int] = field(default_factory=list)  # messages each worker process sent
    restarts: Counter[str] = field(default_factory=Counter)  # processes the "host" restarted
    events: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {
            "scale_messages": self.messages, "scale_rate_limit": self.rate,
            "scale_drain_seconds": round(self.drain_seconds, 1),
            "scale_sent_once": self.sent_once, "scale_sent_twice": self.sent_twice,
            "scale_missing": self.missing, "scale_max_sends_in_a_second": self.max_in_a_second,
            "scale_max_sends_in_a_second_steady": self.max_in_a_second_steady,
            "scale_rate_per_second": round(self.achieved_rate, 1),
            "scale_worker_shares": self.shares, "scale_restarts": dict(self.restarts),
        }


class _Redis:
    """A redis-server of the rehearsal's own, so restarting it disturbs nothing else."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: port_open(self.port), 10, "the rehearsal's redis-server")

    def restart(self) -> None:
        """Killed and started empty, as a managed Redis that lost its data comes back."""
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class _Host:
    """The processes of one formation; one that exits is started again, as a host does."""

    def __init__(self, stage: Stage, rate: float) -> None:
        self.stage, self.rate = stage, rate
        self.webs = [free_port(), free_port()]
        self.processes: dict[str, Child] = {}

    def _start(self, name: str) -> None:
        extra = dict(TIMINGS, SEND_RATE_PER_SECOND=str(self.rate))
        if name.startswith("web"):
            port = self.webs[int(name[-1]) - 1]
            child = self.stage.start_web(workers=1, threads=4, port=port, name=name)
        else:
            command = name.rstrip("0123456789")
            # Each worker's status callbacks go to one web process or the other, as a
            # router spreads them.
            web = self.webs[int(name[-1]) % 2]
            child = self.stage.start(name, [sys.executable, "-m", "bot.tools.cli", command],
                                     PUBLIC_BASE_URL=f"http://127.0.0.1:{web}", **extra)
        self.processes[name] = child

    def scale(self, web: int, worker: int, dispatcher: int) -> None:
        for kind, count in (("web", web), ("worker", worker), ("dispatcher", dispatcher)):
            for number in range(1, count + 1):
                self._start(f"{kind}{number}")

    def kill(self, name: str) -> None:
        self.processes[name].process.send_signal(signal.SIGKILL)
        self.processes[name].process.wait(timeout=10)

    def supervise(self, restarts: Counter[str]) -> None:
        for name, child in list(self.processes.items()):
            if not child.alive():
                self.stage.stop(child)
                restarts[name] += 1
                self._start(name)


def _settled(engine: Engine) -> tuple[int, int]:
    """(rows not yet settled, rows the provider accepted)."""
    pending, accepted, _ = fixtures.progress(engine)
    return pending, accepted


def _sent(stage: Stage, phones: list[str]) -> dict[str, list[datetime]]:
    """When the provider received each phone's messages."""
    found: dict[str, list[datetime]] = {}
    with requests.Session() as http:
        for phone in phones:
            rows = http.get(f"{stage.sandbox_url}/sandbox/api/conversations/{phone}",
                            timeout=10).json()
            found[phone] = [datetime.fromisoformat(m["date_created"]) for m in rows
                            if m["direction"].startswith("outbound")]
    return found


def _max_in_a_second(moments: list[datetime]) -> int:
    ordered, best, first = sorted(moments), 0, 0
    for last, moment in enumerate(ordered):
        while (moment - ordered[first]).total_seconds() >= 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


def _shares(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT count(*) FROM delivery WHERE provider_sid IS NOT NULL "
            "GROUP BY claimed_by ORDER BY count(*) DESC")).scalars()
        return [int(n) for n in rows]


def _drive(engine: Engine, host: _Host, redis_server: _Redis, found: Rehearsal,
           timeout: float) -> None:
    """Wait for the drain, killing a worker at a third and restarting Redis at a half."""
    started, killed, restarted = time.monotonic(), False, False
    while time.monotonic() - started < timeout:
        pending, accepted = _settled(engine)
        if not killed and accepted >= found.messages // 3:
            host.kill("worker1")
            killed = True
            found.events.append(f"worker1 SIGKILLed at {accepted} sent")
        if killed and not restarted and accepted >= found.messages // 2:
            found.restarted_at = now()
            redis_server.restart()
            restarted = True
            found.events.append(f"Redis restarted empty at {accepted} sent")
        if pending == 0:
            break
        host.supervise(found.restarts)
        time.sleep(POLL)
    found.drain_seconds = time.monotonic() - started


def rehearse(engine: Engine, database_url: str, *, messages: int = 2000, rate: float = 100.0,
             timeout: float = 300.0) -> Rehearsal:
    """Run the rehearsal on `engine`'s (emptied) bench database; returns what it found."""
    found = Rehearsal(messages=messages, rate=rate)
    redis_server = _Redis()
    stage = Stage(database_url=database_url, redis_url=redis_server.url)
    try:
        stage.start_sandbox(callback_delay=0.2)
        host = _Host(stage, rate)
        host.scale(web=2, worker=3, dispatcher=2)
        time.sleep(3)  # the workers listening before the messages fall due
        ids = fixtures.add_participants(engine, messages)
        fixtures.add_due_events(engine, ids, due_at=now())
        _drive(engine, host, redis_server, found, timeout)
        phones = [fixtures.phone(i) for i in range(messages)]
        received = _sent(stage, phones)
    finally:
        stage.stop_all()
        redis_server.stop()
    counts = Counter(len(moments) for moments in received.values())
    found.sent_once, found.missing = counts.get(1, 0), counts.get(0, 0)
    found.sent_twice = sum(n for k, n in counts.items() if k > 1)
    moments = [m for ms in received.values() for m in ms]
    found.max_in_a_second = _max_in_a_second(moments)
    found.max_in_a_second_steady = _max_in_a_second([
        m for m in moments if found.restarted_at is None
        or not 0 <= (m - found.restarted_at).total_seconds() < AFTER_RESTART])
    if len(moments) > 1:
        span = (max(moments) - min(moments)).total_seconds()
        found.achieved_rate = (len(moments) - 1) / span if span else 0.0
    found.shares = _shares(engine)
    if found.sent_once + found.sent_twice + found.missing != messages:
        raise BenchError("the rehearsal's provider saw numbers it was never sent")
    return found
