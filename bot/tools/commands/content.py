"""`bot check` and `bot simulate`: a program's content validated, then tried on simulated
participants before anyone enrolls."""

from __future__ import annotations

import click

from bot.settings import SettingsError
from bot.tools.commands import load_settings


@click.command("check")
def check_command() -> None:
    """Validate every program and render each template; exit 1 on any problem."""
    from bot.tools.check import check_programs

    settings = load_settings()
    problems = check_programs(settings.narratives_dir)
    for problem in problems:
        click.echo(problem)
    errors = [p for p in problems if not p.startswith("warning: ")]
    if errors:
        raise click.ClickException(f"{len(errors)} problem(s) in {settings.narratives_dir.name}/")
    click.echo("all programs are valid")


@click.command("simulate")
@click.option("--program", "program_name", required=True, help="program folder name")
@click.option("--persona", default="engaged", show_default=True,
              help="engaged, sporadic, disengaging, stops, checkin, or mix (all in turn)")
@click.option("--days", default=56, show_default=True, type=click.IntRange(1, 3660))
@click.option("--participants", default=1, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--seed", default=1, show_default=True, type=int, help="the personas' choices")
@click.option("--start", default=None, help="enrollment day, ISO date (default 2026-03-02)")
@click.option("--tz", "timezones", multiple=True,
              help="participants' time zone; repeat to spread them (default DEFAULT_TIMEZONE)")
@click.option("--database-url", default=None,
              help="an empty database to use (default: a temporary SQLite file)")
@click.option("--full", is_flag=True,
              help="over real HTTP and RQ (webhooks, sandbox, worker), not in this process")
def simulate_command(
    program_name: str, persona: str, days: int, participants: int, seed: int,
    start: str | None, timezones: tuple[str, ...], database_url: str | None, full: bool,
) -> None:
    """Run simulated participants through a program on a virtual clock, with the bot's own
    decisions, hub, send gate and replies (`--full`: over HTTP and RQ, as in production).

    One participant: their transcript in local time, then the summary; the last line is JSON.
    """
    from datetime import date

    from bot.tools.simulate import DEFAULT_START, Plan, SimulationError, run_command

    settings = load_settings()
    try:
        first_day = date.fromisoformat(start) if start else DEFAULT_START
    except ValueError:
        message = f"--start must be a date like 2026-03-02, not {start!r}"
        raise click.ClickException(message) from None
    plan = Plan(
        program=program_name, persona=persona, days=days, participants=participants, seed=seed,
        start=first_day, timezones=timezones or (settings.default_timezone,),
    )
    try:
        run_command(
            plan, settings, database_url=database_url, echo=click.echo,
            progress=(lambda line: click.echo(line, err=True)) if participants > 1 else None,
            full=full,
        )
    except (SimulationError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None
