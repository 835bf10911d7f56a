"""Outbound throughput: Tend's outbox pipeline, the naive per-message design, the provider alone."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rq import Queue
from rq.registry import FailedJobRegistry
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.clock import as_utc, now
from bot.settings import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, SANDBOX_FROM_NUMBER
from bot.store.models import Delivery
from bot.tools.bench import fixtures, naive
from bot.tools.bench.stage import cpu_seconds, cpu_spent

POLL_SECONDS = 0.2
STALL_SECONDS = 20.0  # no row moved for this long: whatever is left counts as an error

CpuGroups = Callable[[], dict[str, list[int] | str]]


@dataclass
class SendRun:
    messages: int
    accepted: int
    seconds: float
    cpu: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> int:
        return self.messages - self.accepted


def _wait_done(engine: Engine, expected: int, timeout: float) -> tuple[int, datetime | None]:
    """Poll SQL until every row has a sid, nothing moves any more, or `timeout`."""
    deadline = time.monotonic() + timeout
    last_change, last_seen = time.monotonic(), (-1, -1)
    while time.monotonic() < deadline:
        pending, accepted, last = fixtures.progress(engine)
        if accepted >= expected or pending == 0:
            return accepted, last
        if (pending, accepted) != last_seen:
            last_seen, last_change = (pending, accepted), time.monotonic()
        elif time.monotonic() - last_change > STALL_SECONDS:
            break
        time.sleep(POLL_SECONDS)
    _, accepted, last = fixtures.progress(engine)
    return accepted, last


def _sleep_until(moment: datetime) -> None:
    delay = (moment - now()).total_seconds()
    if delay > 0:
        time.sleep(delay)


def warm_up(engine: Engine, participant_ids: list[int]) -> int:
    """Send a few messages through the running processes (imports, pools, templates warm)."""
    fixtures.delete_deliveries(engine)
    fixtures.add_due_events(engine, participant_ids, due_at=now())
    accepted, _ = _wait_done(engine, len(participant_ids), timeout=60)
    fixtures.delete_deliveries(engine)
    return len(participant_ids) - accepted


def _measure(
    engine: Engine, expected: int, due: datetime, groups: CpuGroups, timeout: float
) -> SendRun:
    _sleep_until(due - timedelta(milliseconds=50))
    before = cpu_seconds(groups())
    accepted, last = _wait_done(engine, expected, timeout)
    spent = cpu_spent(before, cpu_seconds(groups()))
    seconds = (as_utc(last) - due).total_seconds() if last is not None else 0.0
    return SendRun(messages=expected, accepted=accepted, seconds=seconds, cpu=spent)


def run_outbox(
    engine: Engine, participant_ids: list[int], groups: CpuGroups, *, lead: float = 1.5
) -> SendRun:
    """Rows become due all at once; time until the last provider sid is stored in SQL.

    The dispatcher and workers are already running: this is the steady state of a real
    deployment at the moment a large cohort's message falls due.
    """
    fixtures.delete_deliveries(engine)
    due = now() + timedelta(seconds=lead)
    fixtures.add_due_events(engine, participant_ids, due_at=due)
    return _measure(engine, len(participant_ids), due, groups, timeout=600)


def run_naive(
    engine: Engine, queue: Queue, participant_ids: list[int], groups: CpuGroups, *,
    lead: float = 1.5,
) -> SendRun:
    """The same rows, one `enqueue_at` job each, all scheduled for the same moment."""
    fixtures.delete_deliveries(engine)
    # Rows are due far ahead so that nothing but the naive jobs ever touches them.
    fixtures.add_due_events(engine, participant_ids, due_at=now() + timedelta(days=1))
    with engine.connect() as connection:
        ids = list(connection.execute(select(Delivery.id).order_by(Delivery.id)).scalars())
    due = now() + timedelta(seconds=lead + len(ids) / 1000)  # time enough to schedule them all
    started = time.monotonic()
    naive.schedule(queue, ids, due)
    scheduling, scheduled_at = time.monotonic() - started, now()
    run = _measure(engine, len(ids), due, groups, timeout=600)
    failed = FailedJobRegistry(queue=queue).count
    run.note = f"{scheduling:.1f}s to schedule {len(ids)} jobs; {failed} failed jobs"
    if scheduled_at > due:
        run.note += " (scheduling ran past the due time)"
    return run


@dataclass
class ProbeRun:
    requests: int
    errors: int
    seconds: float
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def probe_provider(
    sandbox_url: str, callback_url: str, requests: int, concurrency: int, groups: CpuGroups
) -> ProbeRun:
    """The provider's own ceiling: raw message creates from a lean asyncio client, no bot."""
    import aiohttp

    token = base64.b64encode(f"{SANDBOX_ACCOUNT_SID}:{SANDBOX_AUTH_TOKEN}".encode()).decode()
    url = f"{sandbox_url}/2010-04-01/Accounts/{SANDBOX_ACCOUNT_SID}/Messages.json"
    form = {
        "To": fixtures.phone(0), "From": SANDBOX_FROM_NUMBER, "StatusCallback": callback_url,
        "Body": "Day 3 of 7: Step outside or to a window for two minutes today.",
    }

    async def drive() -> tuple[int, float]:
        errors, remaining = 0, requests
        headers = {"Authorization": f"Basic {token}"}
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency), headers=headers
        ) as session:

            async def one_client() -> None:
                nonlocal errors, remaining
                while remaining > 0:
                    remaining -= 1
                    try:
                        async with session.post(url, data=form) as response:
                            await response.read()
                            errors += response.status != 201
                    except aiohttp.ClientError:
                        errors += 1

            started = time.perf_counter()
            await asyncio.gather(*(one_client() for _ in range(concurrency)))
            return errors, time.perf_counter() - started

    before = cpu_seconds(groups())
    errors, seconds = asyncio.run(drive())
    return ProbeRun(requests, errors, seconds, cpu_spent(before, cpu_seconds(groups())))
