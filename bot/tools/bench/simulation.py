"""The benchmark's simulation stage: many simulated participants for weeks, on a virtual clock.

`bot simulate` with a mix of personas against the benchmark's PostgreSQL database: how fast the
bot's domain and SQL code runs a study (every message decided, rendered, gated, sent to the
recorder, called back, answered and credited), and whether every journey kept the rules
(nothing in quiet hours, nothing after STOP but the confirmation). With `full`, over HTTP and
RQ (the twilio library, the sandbox, signed webhooks) on the benchmark's Redis db.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from bot.care.programs import programs_in
from bot.settings import PROJECT_ROOT, Settings
from bot.tools.simulate import Plan, format_summary, simulate, summarize

PROGRAMS = ("positive-parenting", "daily-checkin")  # the first that exists is simulated
TIMEZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")


def run_simulation(
    engine: Engine,
    *,
    database_url: str,
    redis_url: str,
    participants: int,
    days: int,
    say: Callable[[str], None],
    full: bool = False,
) -> dict[str, Any]:
    """Simulate `participants` (personas in turn, four US zones) for `days` on an empty database
    (in this process; `full`: over HTTP and RQ, on `redis_url`); print the summary; return its
    figures."""
    with tempfile.TemporaryDirectory(prefix="tend-bench-simulate-") as folder:
        settings = Settings(
            database_url=database_url,
            redis_url=redis_url,
            narratives_dir=PROJECT_ROOT / "narratives",
            instance_dir=Path(folder),
        ).validated()
        programs = programs_in(settings.narratives_dir)
        program = next(name for name in PROGRAMS if name in programs)
        plan = Plan(
            program=program, persona="mix", participants=participants, days=days,
            timezones=TIMEZONES,
        )
        say(
            f"6. Simulation: {participants} participants x {days} days of {program}, personas "
            f"in turn, {len(TIMEZONES)} US zones, quiet hours on; virtual clock in steps of at "
            f"least {plan.step.total_seconds() / 60:g} min, "
            + ("over HTTP and RQ in one process (bot, sandbox, dispatcher, worker)" if full else
               "in process (the bot's domain and SQL code; a recorder as the provider)")
        )
        outcome = simulate(plan, settings, progress=lambda line: say(f"  {line}"), full=full)
        summary = summarize(engine, settings, outcome)
    for line in format_summary(summary):
        say(f"  {line}")
    for error in outcome.errors:
        say(f"    error: {error}")
    return {
        **summary.figures,
        "outcomes": summary.outcomes,
        "randomization": summary.randomization,
    }
