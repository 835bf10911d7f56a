"""`bot simulate`: simulated participants go through a program on a virtual clock.

By default the bot's own domain and SQL code runs in this process (`inprocess`): inbound
handling, decisions, the hub, the sender with its send gate and status handling, with the
provider replaced at the twilio client by a recorder and each job's work done as soon as it is
claimed. `full=True` (`bot simulate --full`) runs the deployed path instead (`full`): the web
app and the sandbox on HTTP ports, RQ on Redis, the dispatcher and a worker. Both share the
clock loop (`journey`) and print the same transcript and summary (`report`, `terminal`).

Quiet hours and the daily cap stay on in both; only the carrier's send rate is lifted, as it
means nothing on a virtual clock.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bot.care.programs import ProgramError, programs_in
from bot.settings import Settings
from bot.store.db import get_engine
from bot.tools.personas import PERSONAS
from bot.tools.simulate.inprocess import InProcessStack
from bot.tools.simulate.journey import Simulation
from bot.tools.simulate.plan import (
    DEFAULT_START,
    Outcome,
    Plan,
    Simulated,
    SimulationError,
    phone_number,
    quiet_logs,
)
from bot.tools.simulate.report import Summary, stamp, summarize, transcript
from bot.tools.simulate.terminal import figures_json, format_summary

__all__ = [
    "DEFAULT_START", "Outcome", "Plan", "Simulated", "SimulationError", "Summary", "figures_json",
    "format_summary", "phone_number", "run_command", "simulate", "summarize", "transcript",
]


def simulate(
    plan: Plan, settings: Settings, *, progress: Callable[[str], None] | None = None,
    full: bool = False,
) -> Outcome:
    """Run `plan` against the database of `settings` (schema already in place); `full` runs it
    over HTTP and RQ, with the Redis of `settings`."""
    try:
        plan = plan.validated(programs_in(settings.narratives_dir))
    except ProgramError as exc:
        raise SimulationError("the programs have problems:\n" + str(exc)) from None
    with quiet_logs():
        if full:
            from bot.tools.simulate.full import FullStack

            stack: FullStack | InProcessStack = FullStack(settings)
        else:
            stack = InProcessStack(settings)
        try:
            return Simulation(plan, stack, progress=progress).run("full" if full else "in-process")
        finally:
            stack.close()


def _unsynced(connection: Any, _record: Any) -> None:
    """A database thrown away at the end need not wait for the disk at every commit."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


def run_command(
    plan: Plan,
    base: Settings,
    *,
    database_url: str | None,
    echo: Callable[[str], None],
    progress: Callable[[str], None] | None,
    full: bool = False,
) -> Summary:
    """`bot simulate`: a fresh temporary SQLite database (and, with `full`, an embedded Redis)
    unless told otherwise; prints the transcript (one participant) and the summary, then one
    JSON line."""
    with tempfile.TemporaryDirectory(prefix="tend-simulate-") as folder:
        settings = base.with_overrides(
            env="test" if base.env == "test" else "development",
            instance_dir=Path(folder),
            database_url=database_url or f"sqlite:///{Path(folder) / 'simulate.sqlite3'}",
        )
        with quiet_logs():
            from bot.store.migrate import upgrade  # alembic logs its plugins as it is imported

            upgrade(settings)
        engine = get_engine(settings.database_url)
        if database_url is None:
            event.listen(engine, "connect", _unsynced)
        try:
            outcome = simulate(plan, settings, progress=progress, full=full)
            summary = summarize(engine, settings, outcome)
            if plan.participants == 1:
                person = outcome.participants[0]
                program = programs_in(settings.narratives_dir)[plan.program]
                echo(
                    f"{program.title}: one {person.persona} participant "
                    f"({PERSONAS[person.persona].summary}), {plan.days} days from "
                    f"{stamp(outcome.started, person.timezone)} ({person.timezone})"
                )
                for line in transcript(engine, person.id):
                    echo(line)
                echo("")
            for line in format_summary(summary):
                echo(line)
            for error in outcome.errors:
                echo(f"  error: {error}")
            echo(figures_json(summary))
        finally:
            engine.dispose()
    return summary

