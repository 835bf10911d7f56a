"""`bot bench`: run every measurement on this machine and print the figures, then one JSON line."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import click
from rq import Queue, Worker

from bot.settings import Settings
from bot.tools.bench import delivery, dispatch, fixtures, inbound, simulation
from bot.tools.bench.stage import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    NAIVE_QUEUE_NAME,
    QUEUE_NAME,
    BenchError,
    Child,
    Stage,
    bench_database,
    bench_redis,
    empty_tables,
    release_redis,
    wait_until,
)

TARGET_SEND_RATE = 1000.0
TARGET_RATIO = 10.0
TARGET_FLAT = 1.5  # claiming among 1M rows may cost at most this many times claiming among 10k
TARGET_INBOUND_RPS = 500.0
TARGET_INBOUND_P99_MS = 50.0


@dataclass(frozen=True)
class Scale:
    messages: int = 5000
    naive_messages: int = 5000
    warmup: int = 200
    provider_probe: int = 3000
    dispatch_sizes: tuple[int, int, int] = (10_000, 100_000, 1_000_000)
    due_rows: int = 1000
    dispatch_runs: int = 5
    inbound_requests: int = 5000
    inbound_warmup: int = 200
    concurrency: int = 8  # client connections for the provider probe and the webhooks
    lead: float = 1.5  # seconds between writing a run's rows and the moment they fall due
    sim_participants: int = 1000  # the simulated study: participants x days
    sim_days: int = 56
    quick: bool = False

    @property
    def participants(self) -> int:
        return max(
            self.messages, self.naive_messages, self.warmup, self.due_rows,
            self.inbound_requests + self.inbound_warmup,
        )


QUICK = Scale(
    messages=60, naive_messages=60, warmup=0, provider_probe=60,
    dispatch_sizes=(1_000, 2_000, 5_000), due_rows=100, dispatch_runs=3,
    inbound_requests=60, inbound_warmup=0, lead=0.3, sim_participants=20, sim_days=14,
    quick=True,
)


def say(text: str = "") -> None:
    click.echo(text)
    sys.stdout.flush()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _cpu_line(cpu: dict[str, float], per: int, seconds: float, unit: str) -> str:
    """CPU milliseconds each part spent per message (or request), and how busy the 2 cores were."""
    parts = [f"{name} {1000 * spent / per:.2f}" for name, spent in cpu.items() if per]
    busy = sum(cpu.values()) / (seconds * (os.cpu_count() or 1)) if seconds > 0 else 0.0
    return f"      CPU ms per {unit}: {', '.join(parts)}  (all cores {100 * busy:.0f}% busy)"


def _wait_workers(connection: Any, queue: Queue, count: int, children: list[Child]) -> None:
    def ready() -> bool:
        for child in children:
            if not child.alive():
                raise click.ClickException(f"{child.name} exited:\n{child.tail()}")
        return len(Worker.all(queue=queue)) >= count

    wait_until(ready, 60, f"{count} worker(s) on {queue.name}")


def run_benchmark(quick: bool = False, **overrides: Any) -> dict[str, Any]:
    """Run every measurement, print the figures; the last line printed is one JSON object."""
    scale = replace(QUICK if quick else Scale(), **overrides)
    raw_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    database_url = Settings(database_url=raw_url).validated().database_url  # postgres:// too
    redis_url = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL
    explicit = bool(os.environ.get("BENCH_REDIS_URL"))
    stage = Stage(database_url=database_url, redis_url=redis_url)
    started = time.monotonic()
    try:
        engine = bench_database(database_url)
        connection = bench_redis(redis_url, explicit=explicit)
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        figures = _run(stage, engine, connection, scale)
    finally:
        stage.stop_all()
        empty_tables(engine)
        engine.dispose()
        release_redis(redis_url, connection, explicit=explicit)
    figures["bench_seconds"] = round(time.monotonic() - started, 1)
    say(f"(whole benchmark: {figures['bench_seconds']} s; process logs in {stage.logs})")
    say(json.dumps(figures, sort_keys=False))
    return figures


def _run(stage: Stage, engine: Any, connection: Any, scale: Scale) -> dict[str, Any]:
    cores = os.cpu_count()
    say(f"Tend benchmark{' (quick: tiny sizes)' if scale.quick else ''} on {cores} cores")
    say(
        "  provider: the local sandbox (bot/sandbox, werkzeug threaded server) in its own "
        "process; its status callbacks are held back so sends are timed alone"
    )
    say(
        "  SEND_RATE_PER_SECOND=1000000 (no carrier limit), no quiet hours, "
        "DISPATCH_INTERVAL_SECONDS=0.2, SEND_CONCURRENCY=8 threads per worker"
    )
    ids = fixtures.add_participants(engine, scale.participants)
    say(f"  {len(ids)} participants enrolled in {fixtures.PROGRAM} (bulk INSERT ... SELECT)")
    errors: dict[str, int] = {}
    figures: dict[str, Any] = {"quick": scale.quick, "messages": scale.messages}

    sandbox = stage.start_sandbox()
    say()
    say("0. The provider alone (sandbox, raw asyncio client, "
        f"{scale.concurrency} connections, {scale.provider_probe} creates)")
    probe = delivery.probe_provider(
        stage.sandbox_url, f"{stage.web_url}/twilio/status", scale.provider_probe,
        scale.concurrency, lambda: {"sandbox": [sandbox.pid], "client": "self"},
    )
    errors["provider_probe"] = probe.errors
    figures["provider_alone_rps"] = round(probe.rate, 1)
    say(f"   {probe.rate:8.1f} creates/s  ({probe.errors} errors)  = the ceiling for any sender")
    say(_cpu_line(probe.cpu, probe.requests, probe.seconds, "create"))

    # 1. Tend's outbox: dispatcher -> RQ (one job per 50 rows) -> bot worker -> sandbox.
    say()
    say(
        f"1. Dispatch + send: {scale.messages} due rows (templates rendered at send time) "
        "-> provider sid stored in SQL"
    )
    queue = Queue(QUEUE_NAME, connection=connection)
    dispatcher = stage.start_bot("dispatcher", "dispatcher")
    workers = [stage.start_bot("worker-1", "worker")]
    _wait_workers(connection, queue, 1, workers)

    def ours() -> dict[str, list[int] | str]:
        return {
            "sandbox": [sandbox.pid], "workers": [w.pid for w in workers],
            "dispatcher": [dispatcher.pid], "postgres": "postgres", "redis": "redis-server",
            "bench": "self",
        }

    rates: dict[int, float] = {}
    for count in (1, 2):
        if count == 2:
            workers.append(stage.start_bot("worker-2", "worker"))
            _wait_workers(connection, queue, 2, workers)
        if scale.warmup:
            errors[f"warmup_{count}"] = delivery.warm_up(engine, ids[: scale.warmup])
        run = delivery.run_outbox(engine, ids[: scale.messages], ours, lead=scale.lead)
        errors[f"send_{count}_worker"] = run.errors
        rates[count] = run.rate
        say(
            f"   {count} worker{'s' if count > 1 else ' '}: {run.rate:8.1f} messages/s  "
            f"({run.accepted}/{run.messages} accepted in {run.seconds:.2f} s, "
            f"{run.errors} errors)"
        )
        say(_cpu_line(run.cpu, run.messages, run.seconds, "message"))
    figures["send_rate_1_worker"] = round(rates[1], 1)
    figures["send_rate_2_workers"] = round(rates[2], 1)
    peak = max(w.peak_rss_mb() for w in workers)
    figures["worker_peak_rss_mb"] = round(peak, 1)
    stage.stop(*workers, dispatcher)

    # 2. The naive design: one enqueue_at job per message, a fresh Client per send.
    say()
    say(
        f"2. Naive design: {scale.naive_messages} rq enqueue_at jobs, one per message "
        "(2 SimpleWorkers, rq scheduler), fresh twilio Client per send"
    )
    naive_queue = Queue(NAIVE_QUEUE_NAME, connection=connection)
    naive_workers: list[Child] = []
    for number in (1, 2):
        naive_workers.append(
            stage.start(
                f"naive-{number}", [sys.executable, "-m", "bot.tools.bench.naive"],
                QUEUE_NAME=NAIVE_QUEUE_NAME,
            )
        )
    _wait_workers(connection, naive_queue, 2, naive_workers)

    def naive_groups() -> dict[str, list[int] | str]:
        return {
            "sandbox": [sandbox.pid], "workers": [w.pid for w in naive_workers],
            "postgres": "postgres", "redis": "redis-server", "bench": "self",
        }

    if scale.warmup:
        warm = delivery.run_naive(
            engine, naive_queue, ids[: scale.warmup], naive_groups, lead=scale.lead
        )
        errors["naive_warmup"] = warm.errors
    naive_run = delivery.run_naive(
        engine, naive_queue, ids[: scale.naive_messages], naive_groups, lead=scale.lead
    )
    errors["naive"] = naive_run.errors
    figures["naive_rate"] = round(naive_run.rate, 1)
    ratio = rates[2] / naive_run.rate if naive_run.rate else 0.0
    figures["ratio_vs_naive"] = round(ratio, 2)
    say(
        f"   naive:    {naive_run.rate:8.1f} messages/s  ({naive_run.accepted}/"
        f"{naive_run.messages} accepted in {naive_run.seconds:.2f} s, {naive_run.errors} errors;"
        f" {naive_run.note})"
    )
    say(_cpu_line(naive_run.cpu, naive_run.messages, naive_run.seconds, "message"))
    say(f"   ratio ours (2 workers) / naive (2 workers): {ratio:.1f}x")
    stage.stop(*naive_workers, sandbox)

    # 3. The dispatcher's claim among ever more future rows.
    say()
    say(
        f"3. Dispatcher cost: claim_due(limit={scale.due_rows}) with {scale.due_rows} due rows "
        f"among N scheduled (median of {scale.dispatch_runs}, reset between runs)"
    )
    costs = dispatch.measure_sizes(
        engine, ids, list(scale.dispatch_sizes), due=scale.due_rows, runs=scale.dispatch_runs
    )
    for cost, key in zip(costs, ("10k", "100k", "1m"), strict=True):
        figures[f"dispatch_ms_{key}"] = round(cost.median_ms, 2)
        errors[f"dispatch_{key}"] = cost.due - cost.claimed
        say(
            f"   {cost.rows:>9,} rows: {cost.median_ms:7.2f} ms  "
            f"(runs {', '.join(f'{t:.1f}' for t in cost.runs_ms)}; claimed {cost.claimed})  "
            f"{cost.scans}"
        )
    flat = costs[-1].median_ms / costs[0].median_ms if costs[0].median_ms else 0.0
    figures["dispatch_ratio_1m_10k"] = round(flat, 2)
    figures["dispatch_plan"] = costs[-1].scans
    figures["dispatch_table_rows"] = list(scale.dispatch_sizes)
    say(f"   ratio largest/smallest: {flat:.2f}; plan at {costs[-1].rows:,} rows:")
    for line in costs[-1].plan:
        say(f"     {line if len(line) <= 150 else line[:147] + '...'}")

    # 4. Inbound webhooks under gunicorn, as the Procfile runs them.
    say()
    say(
        f"4. Inbound webhooks: gunicorn -w 2 --threads 4 'bot:create_app()', signatures "
        f"checked; {scale.inbound_requests} signed texts ('4' answers, every fifth 'hello'), "
        f"{scale.concurrency} concurrent connections (aiohttp)"
    )
    fixtures.add_sent_prompts(engine, ids[: scale.inbound_warmup + scale.inbound_requests])
    web = stage.start_web()
    if scale.inbound_warmup:
        warm_requests = inbound.signed_requests(stage.web_url, range(scale.inbound_warmup), "b0")
        warm_in = inbound.post_all(stage.web_url, warm_requests, scale.concurrency, None)
        errors["inbound_warmup"] = warm_in.errors
    timed = inbound.signed_requests(
        stage.web_url,
        range(scale.inbound_warmup, scale.inbound_warmup + scale.inbound_requests),
        "b1",
    )
    web_run = inbound.post_all(
        stage.web_url, timed, scale.concurrency,
        lambda: {"web": [web.pid], "postgres": "postgres", "client": "self"},
    )
    errors["inbound"] = web_run.errors
    figures["inbound_rps"] = round(web_run.rate, 1)
    figures["inbound_p50_ms"] = round(web_run.percentile(0.50), 1)
    figures["inbound_p99_ms"] = round(web_run.percentile(0.99), 1)
    say(
        f"   {web_run.rate:8.1f} requests/s  p50 {web_run.percentile(0.5):.1f} ms  "
        f"p99 {web_run.percentile(0.99):.1f} ms  max {max(web_run.latencies_ms):.1f} ms  "
        f"(statuses {web_run.statuses})"
    )
    say(_cpu_line(web_run.cpu, web_run.requests, web_run.seconds, "request"))
    stage.stop(web)

    # 5. Memory.
    say()
    say(f"5. Worker peak RSS (VmHWM of the bot worker processes): {peak:.1f} MiB")

    # 6. A simulated study: personas on a virtual clock, through the whole path.
    say()
    empty_tables(engine)
    study = simulation.run_simulation(
        engine, database_url=stage.database_url, redis_url=stage.redis_url,
        participants=scale.sim_participants, days=scale.sim_days, say=say,
    )
    figures["simulation"] = study
    errors["simulation"] = study["errors"] + study["quiet_hour_sends"] + study["after_stop"]

    total_errors = sum(errors.values())
    figures["errors"] = total_errors
    figures["errors_by_stage"] = {k: v for k, v in errors.items() if v}
    best = max(rates.values())
    targets = {
        "send_rate": best >= TARGET_SEND_RATE,
        "vs_naive": ratio >= TARGET_RATIO,
        "dispatch_flat": flat <= TARGET_FLAT and "Seq Scan" not in costs[-1].scans,
        "inbound": web_run.rate >= TARGET_INBOUND_RPS
        and web_run.percentile(0.99) < TARGET_INBOUND_P99_MS,
        "zero_errors": total_errors == 0,
    }
    figures["targets"] = {name: verdict(ok) for name, ok in targets.items()}
    say()
    say("Targets")
    rows: list[tuple[str, str, Callable[[], bool] | bool]] = [
        (f"dispatch+send >= {TARGET_SEND_RATE:,.0f} messages/s", f"{best:.0f}/s",
         targets["send_rate"]),
        (f">= {TARGET_RATIO:.0f}x the naive design", f"{ratio:.1f}x", targets["vs_naive"]),
        (f"dispatcher cost flat (1M/10k <= {TARGET_FLAT}, no Seq Scan)", f"{flat:.2f}",
         targets["dispatch_flat"]),
        (f"inbound >= {TARGET_INBOUND_RPS:.0f} req/s with p99 < {TARGET_INBOUND_P99_MS:.0f} ms",
         f"{web_run.rate:.0f}/s, p99 {web_run.percentile(0.99):.1f} ms", targets["inbound"]),
        ("zero errors", f"{total_errors} ({figures['errors_by_stage'] or 'none'})",
         targets["zero_errors"]),
    ]
    for label, value, ok in rows:
        say(f"  {verdict(bool(ok))}  {label:<58} {value}")
    if probe.rate < TARGET_SEND_RATE:
        say(
            f"  note: the provider alone accepts {probe.rate:.0f} creates/s on this machine, "
            "so no sender can reach the send target through it"
        )
    return figures
