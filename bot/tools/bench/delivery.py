"""Outbound throughput: Tend's outbox pipeline, the naive per-message design, the provider alone."""

from __future__ import annotations

import asyncio
import base64
import sys
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
from bot.tools.bench.scale import (
    TARGET_BOT_CPU_MS,
    TARGET_CPU_RATIO,
    TARGET_RATIO,
    TARGET_SEND_RATE,
    Bench,
    cpu_line,
    say,
)
from bot.tools.bench.stage import (
    NAIVE_QUEUE_NAME,
    QUEUE_NAME,
    Child,
    cpu_seconds,
    cpu_spent,
    wait_workers,
)

BOT_PARTS = ("workers", "dispatcher", "postgres", "redis")  # what "bot CPU" adds up
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


# --- the delivery section of `bot bench` ------------------------------------------------


def _bot_cpu(cpu: dict[str, float]) -> float:
    """CPU seconds of the parts that are the bot (or the naive design), not the provider."""
    return sum(cpu.get(part, 0.0) for part in BOT_PARTS)


def run_section(bench: Bench, number: int) -> None:
    """The provider alone, Tend's outbox with one and two workers, the naive design."""
    stage, scale = bench.stage, bench.scale
    say(
        f"{number}. Delivery. The provider: the local sandbox (bot/sandbox) under gunicorn, one "
        "process of 16 threads keeping connections alive as Twilio does; its status callbacks "
        "are held back so sends are timed alone"
    )
    say(
        "  SEND_RATE_PER_SECOND=1000000 (no carrier limit), no quiet hours, "
        "DISPATCH_INTERVAL_SECONDS=0.2, SEND_CONCURRENCY=8 threads per worker"
    )
    sandbox = stage.start_sandbox()
    say(f"  a. The provider alone (raw asyncio client, {scale.concurrency} connections, "
        f"{scale.provider_probe} creates)")
    probe = probe_provider(
        stage.sandbox_url, f"{stage.web_url}/twilio/status", scale.provider_probe,
        scale.concurrency, lambda: {"sandbox": [sandbox.pid], "client": "self"},
    )
    bench.errors["provider_probe"] = probe.errors
    bench.figures["provider_alone_rps"] = round(probe.rate, 1)
    say(f"   {probe.rate:8.1f} creates/s  ({probe.errors} errors)  = the ceiling for any sender")
    say(cpu_line(probe.cpu, probe.requests, probe.seconds, "create"))
    ours = _our_outbox(bench, sandbox)
    theirs = _naive(bench, sandbox)
    stage.stop(sandbox)
    rates = (bench.figures["send_rate_1_worker"], bench.figures["send_rate_2_workers"])
    ratio = rates[1] / bench.figures["naive_rate"] if bench.figures["naive_rate"] else 0.0
    cpu_ratio = theirs / ours if ours else 0.0
    bench.figures.update(
        ratio_vs_naive=round(ratio, 2), bot_cpu_ms_per_message=round(ours, 3),
        naive_cpu_ms_per_message=round(theirs, 3), cpu_ratio_vs_naive=round(cpu_ratio, 2),
    )
    say(f"   ratio ours (2 workers) / naive (2 workers): {ratio:.1f}x messages/s; "
        f"CPU per message {ours:.2f} ms against {theirs:.2f} ms: {cpu_ratio:.1f}x less")
    say(f"   worker peak RSS (VmHWM of the bot worker processes): "
        f"{bench.figures['worker_peak_rss_mb']:.1f} MiB")
    best = max(rates)
    bench.target("send_rate", f"dispatch+send >= {TARGET_SEND_RATE:,.0f} messages/s",
                 f"{best:.0f}/s", best >= TARGET_SEND_RATE)
    bench.target("vs_naive", f">= {TARGET_RATIO:.0f}x the naive design's messages/s",
                 f"{ratio:.1f}x", ratio >= TARGET_RATIO)
    bench.target("bot_cpu", f"bot CPU <= {TARGET_BOT_CPU_MS} ms per message "
                 "(workers+dispatcher+PG+Redis)", f"{ours:.2f} ms", ours <= TARGET_BOT_CPU_MS)
    bench.target("cpu_vs_naive", f"bot CPU per message >= {TARGET_CPU_RATIO:.0f}x less than "
                 "naive", f"{cpu_ratio:.1f}x", cpu_ratio >= TARGET_CPU_RATIO)
    if probe.rate < TARGET_SEND_RATE:
        say(f"  note: the provider alone accepts {probe.rate:.0f} creates/s on this machine, "
            "so no sender can reach the send target through it")


def _our_outbox(bench: Bench, sandbox: Child) -> float:
    """Dispatcher -> RQ (one job per 50 rows) -> bot workers -> sandbox, with one worker then
    two; returns the bot's CPU milliseconds per message over both runs."""
    stage, scale, engine = bench.stage, bench.scale, bench.engine
    say(f"  b. Dispatch + send: {scale.messages} due rows (templates rendered at send time) "
        "-> provider sid stored in SQL")
    queue = Queue(QUEUE_NAME, connection=bench.connection)
    dispatcher = stage.start_bot("dispatcher", "dispatcher")
    workers = [stage.start_bot("worker-1", "worker")]
    wait_workers(queue, 1, workers)

    def groups() -> dict[str, list[int] | str]:
        return {
            "sandbox": [sandbox.pid], "workers": [w.pid for w in workers],
            "dispatcher": [dispatcher.pid], "postgres": stage.postgres, "redis": "redis-server",
            "bench": "self",
        }

    spent, sent = 0.0, 0
    for count in (1, 2):
        if count == 2:
            workers.append(stage.start_bot("worker-2", "worker"))
            wait_workers(queue, 2, workers)
        if scale.warmup:
            bench.errors[f"warmup_{count}"] = warm_up(engine, bench.ids[: scale.warmup])
        run = run_outbox(engine, bench.ids[: scale.messages], groups, lead=scale.lead)
        bench.errors[f"send_{count}_worker"] = run.errors
        key = "send_rate_1_worker" if count == 1 else "send_rate_2_workers"
        bench.figures[key] = round(run.rate, 1)
        mine = 1000 * _bot_cpu(run.cpu) / run.messages if run.messages else 0.0
        bench.figures[f"bot_cpu_ms_per_message_{count}_worker{'s' if count > 1 else ''}"] = (
            round(mine, 3)
        )
        spent, sent = spent + _bot_cpu(run.cpu), sent + run.messages
        say(
            f"   {count} worker{'s' if count > 1 else ' '}: {run.rate:8.1f} messages/s  "
            f"({run.accepted}/{run.messages} accepted in {run.seconds:.2f} s, "
            f"{run.errors} errors); bot CPU {mine:.2f} ms per message"
        )
        say(cpu_line(run.cpu, run.messages, run.seconds, "message"))
    bench.figures["worker_peak_rss_mb"] = round(max(w.peak_rss_mb() for w in workers), 1)
    stage.stop(*workers, dispatcher)
    return 1000 * spent / sent if sent else 0.0


def _naive(bench: Bench, sandbox: Child) -> float:
    """One enqueue_at job per message, a fresh Client per send; returns its CPU milliseconds
    per message (workers with their scheduler, Postgres, Redis)."""
    stage, scale, engine = bench.stage, bench.scale, bench.engine
    say(f"  c. Naive design: {scale.naive_messages} rq enqueue_at jobs, one per message "
        "(2 SimpleWorkers, rq scheduler), fresh twilio Client per send")
    naive_queue = Queue(NAIVE_QUEUE_NAME, connection=bench.connection)
    workers = [
        stage.start(f"naive-{number}", [sys.executable, "-m", naive.__name__],
                    QUEUE_NAME=NAIVE_QUEUE_NAME)
        for number in (1, 2)
    ]
    wait_workers(naive_queue, 2, workers)

    def groups() -> dict[str, list[int] | str]:
        return {
            "sandbox": [sandbox.pid], "workers": [w.pid for w in workers],
            "postgres": stage.postgres, "redis": "redis-server", "bench": "self",
        }

    if scale.warmup:
        warm = run_naive(
            engine, naive_queue, bench.ids[: scale.warmup], groups, lead=scale.lead
        )
        bench.errors["naive_warmup"] = warm.errors
    run = run_naive(
        engine, naive_queue, bench.ids[: scale.naive_messages], groups, lead=scale.lead
    )
    bench.errors["naive"] = run.errors
    bench.figures["naive_rate"] = round(run.rate, 1)
    spent = 1000 * _bot_cpu(run.cpu) / run.messages if run.messages else 0.0
    say(
        f"   naive:    {run.rate:8.1f} messages/s  ({run.accepted}/{run.messages} accepted in "
        f"{run.seconds:.2f} s, {run.errors} errors; {run.note}); CPU {spent:.2f} ms per message"
    )
    say(cpu_line(run.cpu, run.messages, run.seconds, "message"))
    stage.stop(*workers)
    return spent
