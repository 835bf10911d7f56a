"""`bot bench`: run the measurements on this machine and print the figures, then one JSON line.

Sections, in order: delivery (the provider alone, Tend's outbox with one and two workers, the
naive design), dispatch (claiming due rows among ever more scheduled ones), inbound (signed
webhooks under gunicorn), hub (an evaluation and a send for long and short histories) and
simulation (a study on a virtual clock). `only` runs some of them.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import click
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bot.settings import Settings
from bot.tools.bench import delivery, dispatch, fixtures
from bot.tools.bench.scale import (
    QUICK,
    TARGET_FLAT,
    TARGET_INBOUND_CPU_MS,
    TARGET_INBOUND_P99_MS,
    TARGET_INBOUND_RPS,
    TARGET_SIMULATION_SECONDS,
    Bench,
    Scale,
    cpu_line,
    say,
    verdict,
)
from bot.tools.bench.stage import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    BenchError,
    Stage,
    bench_database,
    bench_redis,
    cpu_seconds,
    cpu_spent,
    empty_tables,
    release_redis,
)
from bot.tools.simulate.plan import quiet_logs

SECTIONS = ("delivery", "dispatch", "inbound", "hub", "simulation", "scale")


def sections_of(only: Sequence[str] | None) -> tuple[str, ...]:
    """The sections to run, in the benchmark's order; names may be comma-separated."""
    if not only:
        return SECTIONS
    named = {part.strip().lower() for value in only for part in value.split(",") if part.strip()}
    unknown = sorted(named - set(SECTIONS))
    if unknown:
        raise click.BadParameter(
            f"unknown section {', '.join(map(repr, unknown))}; choose from {', '.join(SECTIONS)}",
            param_hint="--only",
        )
    return tuple(name for name in SECTIONS if name in named)


def run_benchmark(
    quick: bool = False,
    only: Sequence[str] | None = None,
    participants: int | None = None,
    days: int | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Run the chosen sections (all by default), print the figures; the last line printed is
    one JSON object. `participants` and `days` size the simulation section."""
    sections = sections_of(only)
    scale = replace(QUICK if quick else Scale(), **overrides)
    if participants is not None:
        scale = replace(scale, sim_participants=participants)
    if days is not None:
        scale = replace(scale, sim_days=days)
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
    bench = Bench(stage, engine, connection, scale)
    try:
        _run(bench, sections)
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        stage.stop_all()
        empty_tables(engine)
        engine.dispose()
        release_redis(redis_url, connection, explicit=explicit)
    figures = bench.figures
    figures["bench_seconds"] = round(time.monotonic() - started, 1)
    say(f"(whole benchmark: {figures['bench_seconds']} s; process logs in {stage.logs})")
    say(json.dumps(figures, sort_keys=False))
    return figures


def _run(bench: Bench, sections: tuple[str, ...]) -> None:
    scale = bench.scale
    say(
        f"Tend benchmark{' (quick: tiny sizes)' if scale.quick else ''} on {os.cpu_count()} "
        f"cores: {', '.join(sections)}"
    )
    bench.figures.update(quick=scale.quick, sections=list(sections), messages=scale.messages)
    if {"delivery", "dispatch", "inbound"} & set(sections):
        bench.ids = fixtures.add_participants(bench.engine, scale.participants)
        say(f"  {len(bench.ids)} participants enrolled in {fixtures.PROGRAM} "
            "(bulk INSERT ... SELECT)")
    run = {
        "delivery": delivery.run_section, "dispatch": dispatch.run_section, "inbound": _inbound,
        "hub": _hub, "simulation": _simulation, "scale": _scale,
    }
    for number, name in enumerate(sections, start=1):
        say()
        run[name](bench, number)
    total = sum(bench.errors.values())
    bench.figures["errors"] = total
    bench.figures["errors_by_stage"] = {k: v for k, v in bench.errors.items() if v}
    bench.target("zero_errors", "zero errors",
                 f"{total} ({bench.figures['errors_by_stage'] or 'none'})", total == 0)
    bench.figures["targets"] = {key: verdict(ok) for key, _, _, ok in bench.targets}
    say()
    say("Targets")
    for _, label, value, ok in bench.targets:
        say(f"  {verdict(ok)}  {label:<60} {value}")


def _inbound(bench: Bench, number: int) -> None:
    from bot.tools.bench import inbound

    stage, scale = bench.stage, bench.scale
    say(
        f"{number}. Inbound webhooks: gunicorn -w 2 --threads 4 'bot:create_app()', signatures "
        f"checked; {scale.inbound_requests} signed texts ('4' answers, every fifth 'hello'), "
        f"{scale.concurrency} concurrent connections (aiohttp)"
    )
    first, count = scale.inbound_warmup, scale.inbound_requests
    fixtures.add_sent_prompts(bench.engine, bench.ids[: first + count])
    web = stage.start_web()
    if first:
        warm = inbound.signed_requests(stage.web_url, range(first), "b0")
        bench.errors["inbound_warmup"] = inbound.post_all(
            stage.web_url, warm, scale.concurrency, None
        ).errors
    timed = inbound.signed_requests(stage.web_url, range(first, first + count), "b1")
    run = inbound.post_all(
        stage.web_url, timed, scale.concurrency,
        lambda: {"web": [web.pid], "postgres": stage.postgres, "client": "self"},
    )
    stage.stop(web)
    bench.errors["inbound"] = run.errors
    p99 = run.percentile(0.99)
    spent = 1000 * (run.cpu.get("web", 0.0) + run.cpu.get("postgres", 0.0)) / max(run.requests, 1)
    bench.figures.update(
        inbound_rps=round(run.rate, 1), inbound_p50_ms=round(run.percentile(0.50), 1),
        inbound_p99_ms=round(p99, 1), inbound_cpu_ms_per_request=round(spent, 3),
    )
    say(
        f"   {run.rate:8.1f} requests/s  p50 {run.percentile(0.5):.1f} ms  p99 {p99:.1f} ms  "
        f"max {max(run.latencies_ms, default=0.0):.1f} ms  (statuses {run.statuses}); "
        f"web + Postgres CPU {spent:.2f} ms per request"
    )
    say(cpu_line(run.cpu, run.requests, run.seconds, "request"))
    bench.target("inbound", f"inbound >= {TARGET_INBOUND_RPS:.0f} req/s with p99 < "
                 f"{TARGET_INBOUND_P99_MS:.0f} ms", f"{run.rate:.0f}/s, p99 {p99:.1f} ms",
                 run.rate >= TARGET_INBOUND_RPS and p99 < TARGET_INBOUND_P99_MS)
    bench.target("inbound_cpu", f"inbound CPU <= {TARGET_INBOUND_CPU_MS:.0f} ms per request "
                 "(web+PG)", f"{spent:.2f} ms", spent <= TARGET_INBOUND_CPU_MS)


def _hub(bench: Bench, number: int) -> None:
    try:
        from bot.tools.bench.hub import run_hub
    except ModuleNotFoundError as exc:
        if exc.name != "bot.tools.bench.hub":
            raise
        say(f"{number}. Hub: skipped (this version has no bot/tools/bench/hub.py)")
        return
    say(f"{number}. Hub: an evaluation and a send, a week of history against a year")
    empty_tables(bench.engine)
    with quiet_logs():  # the service's INFO lines, one per evaluation timed, are not figures
        found = run_hub(bench.engine, say=say)
    bench.errors["hub"] = int(found.get("errors", 0) or 0)
    found = {key if key.startswith("hub") else f"hub_{key}": value for key, value in found.items()}
    bench.figures.update(found)
    hub, send = found.get("hub_year_over_week"), found.get("hub_send_year_over_week")
    if isinstance(hub, int | float) and isinstance(send, int | float):
        bench.target("hub_flat", f"a year of history costs a hub evaluation and a send no more "
                     f"than a week (<= {TARGET_FLAT}x)", f"hub {hub:.2f}x, send {send:.2f}x",
                     max(hub, send) <= TARGET_FLAT)


# Where the simulation's figures keep its wall time, by the names it has had.
SIMULATION_SECONDS = ("simulation_seconds", "seconds", "wall_seconds")


def _simulation(bench: Bench, number: int) -> None:
    from bot.tools.bench import simulation

    def numbered(line: str) -> None:
        # The simulation names itself as the sixth part of a whole run; here it is `number`.
        say(re.sub(r"^\d+\. ", f"{number}. ", line, count=1))

    scale = bench.scale
    empty_tables(bench.engine)
    groups = {"simulation": "self", "postgres": bench.stage.postgres}
    statements = [0]

    def counted(*_: object) -> None:
        statements[0] += 1

    before = cpu_seconds(groups)
    event.listen(Engine, "after_cursor_execute", counted)
    try:
        study = simulation.run_simulation(
            bench.engine, database_url=bench.stage.database_url, redis_url=bench.stage.redis_url,
            participants=scale.sim_participants, days=scale.sim_days, say=numbered,
        )
    finally:
        event.remove(Engine, "after_cursor_execute", counted)
    spent = cpu_spent(before, cpu_seconds(groups))
    bench.figures["simulation"] = study
    seconds = next((study[key] for key in SIMULATION_SECONDS if key in study), None)
    bench.figures["simulation_seconds"] = seconds
    messages = int(study.get("messages", 0) or 0)
    if messages:
        bench.figures["simulation_cpu_ms_per_message"] = round(
            1000 * sum(spent.values()) / messages, 3
        )
        say(cpu_line(spent, messages, float(seconds or 0.0), "message"))
        # Where the time goes: statements per message (the send gate's own, one per send,
        # goes straight to the driver and is not among them).
        per_message = statements[0] / messages
        bench.figures["simulation_statements_per_message"] = round(per_message, 1)
        say(f"      SQL statements: {statements[0]:,} ({per_message:.1f} per message, besides "
            "the send gate's one per send)")
    if scale.sim_participants >= 1000 and scale.sim_days >= 56 and seconds is not None:
        bench.target("simulation", f"a study of {scale.sim_participants} x {scale.sim_days} days "
                     f"in <= {TARGET_SIMULATION_SECONDS:.0f} s", f"{seconds:.0f} s",
                     seconds <= TARGET_SIMULATION_SECONDS)
    bench.errors["simulation"] = sum(
        int(study.get(key, 0) or 0) for key in ("errors", "quiet_hour_sends", "after_stop")
    )


def _scale(bench: Bench, number: int) -> None:
    from bot.tools.bench import rehearsal

    messages, rate = (300, 100.0) if bench.scale.quick else (2000, 100.0)
    timings = ", ".join(f"{name}={value}" for name, value in rehearsal.TIMINGS.items())
    say(f"{number}. Scale-out rehearsal: 2 web, 3 workers, 2 dispatchers on PostgreSQL and a "
        f"Redis of its own; {messages} messages due at once, SEND_RATE_PER_SECOND={rate:g}; "
        f"worker1 SIGKILLed at a third, Redis restarted empty at a half; an exited process is "
        f"started again, as a host does ({timings})")
    empty_tables(bench.engine)
    found = rehearsal.rehearse(bench.engine, bench.stage.database_url, messages=messages,
                               rate=rate)
    bench.figures.update(found.figures())
    say(f"   drained in {found.drain_seconds:.1f} s: {found.sent_once} sent once, "
        f"{found.sent_twice} twice, {found.missing} never; {'; '.join(found.events)}")
    say(f"   at the provider: {found.achieved_rate:.1f} sends/s on average, at most "
        f"{found.max_in_a_second_steady} in any one second ({found.max_in_a_second} counting "
        f"the seconds after Redis restarted); sent per worker process "
        f"{found.shares}; restarted by the host {dict(found.restarts) or 'none'}")
    bench.errors["scale"] = found.sent_twice + found.missing
    bench.target("scale_exactly_once", f"{messages} messages through a killed worker and a "
                 "Redis restart: each sent exactly once",
                 f"{found.sent_once} once, {found.sent_twice} twice, {found.missing} never",
                 found.sent_once == messages)
    # Slots are spaced exactly on Redis's clock; their arrival at the provider varies with
    # each call's latency, so a second can hold a few more than the rate.
    allowed = rate * 1.05
    bench.target("scale_rate", f"the send rate held across workers (<= {allowed:g} in any "
                 "second at the provider)", f"{found.max_in_a_second_steady}",
                 found.max_in_a_second_steady <= allowed)
    bench.target("scale_rate_restart", f"... and in the {rehearsal.AFTER_RESTART:g} s after Redis "
                 "lost its slot reservations", f"{found.max_in_a_second}",
                 found.max_in_a_second <= allowed)
