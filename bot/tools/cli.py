"""The `bot` command: run the service, enroll participants, read alerts, check content."""

from __future__ import annotations

import csv
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from sqlmodel import col, select
from sqlmodel.sql.expression import Select

from bot.care.programs import Program, ProgramError, load_programs
from bot.care.timing import TimezoneError
from bot.participants.enrollment import EnrollmentError, enroll
from bot.participants.phones import PhoneNumberError, mask
from bot.settings import Settings, SettingsError, environment
from bot.store.db import get_engine, session_scope
from bot.store.models import Alert, Participant


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _local_settings(command: str) -> Settings:
    """Settings for a command that stands in for Twilio: refused with TEND_ENV=production."""
    try:
        production = environment() == "production"
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if production:
        raise click.ClickException(
            f"bot {command} is for local use and does not run with TEND_ENV=production: its "
            f"sandbox lets anyone text the bot and read every conversation"
        )
    return _settings()


def _programs(settings: Settings) -> dict[str, Program]:
    try:
        return load_programs(settings.narratives_dir)
    except ProgramError as exc:
        raise click.ClickException("the programs have problems:\n" + str(exc)) from None


def _program(settings: Settings, name: str) -> Program:
    programs = _programs(settings)
    if name not in programs:
        known = ", ".join(sorted(programs)) or "none"
        raise click.ClickException(f"no program named {name!r} (programs: {known})")
    return programs[name]


@click.group()
def main() -> None:
    """Tend: an SMS hub for digital micro-intervention care."""
    from bot import logs

    logs.install()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


@main.command()
def migrate() -> None:
    """Bring the database schema up to date (Alembic)."""
    from bot.store.migrate import upgrade

    settings = _settings()
    upgrade(settings)
    click.echo("database is up to date")


@main.command("enroll")
@click.argument("phone")
@click.option("--program", "program_name", required=True, help="program folder name")
@click.option("--tz", "timezone", default=None, help="IANA time zone, e.g. America/Chicago")
@click.option("--attr", "attrs", multiple=True, metavar="NAME=VALUE",
              help="a participant attribute the program uses, e.g. wake_time=06:30")
def enroll_command(
    phone: str, program_name: str, timezone: str | None, attrs: tuple[str, ...]
) -> None:
    """Enroll PHONE in a program; the welcome goes out at the next allowed moment."""
    settings = _settings()
    program = _program(settings, program_name)
    engine = get_engine(settings.database_url)
    attributes = {}
    for pair in attrs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.ClickException(f"--attr {pair!r} should look like wake_time=06:30")
        attributes[name.strip()] = value
    try:
        with session_scope(engine) as session:
            participant = enroll(
                session=session,
                phone=phone,
                program=program,
                timezone=timezone or settings.default_timezone,
                via="cli",
                attributes=attributes,
            )
    except (PhoneNumberError, TimezoneError, EnrollmentError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"enrolled {mask(participant.phone)} in {program.name} as participant {participant.id}"
    )


@main.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--program", "program_name", required=True, help="program folder name")
@click.option("--errors", "errors_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="also write the rows that failed, with the reason, to this CSV")
def import_command(csv_file: Path, program_name: str, errors_file: Path | None) -> None:
    """Enroll everyone in CSV_FILE (columns: phone, and optionally timezone)."""
    settings = _settings()
    program = _program(settings, program_name)
    engine = get_engine(settings.database_url)
    with csv_file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        if "phone" not in fields:
            raise click.ClickException(f"{csv_file.name}:1: needs a 'phone' column header")
        rows = [{k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in reader]
    failures: list[tuple[int, dict[str, str], str]] = []
    enrolled = 0
    with click.progressbar(
        list(enumerate(rows, start=2)), label="enrolling", file=sys.stderr
    ) as progress:
        for line, row in progress:
            try:
                with session_scope(engine) as session:
                    enroll(
                        session=session,
                        phone=row.get("phone", ""),
                        program=program,
                        timezone=row.get("timezone") or settings.default_timezone,
                        via="import",
                    )
                enrolled += 1
            except (PhoneNumberError, TimezoneError, EnrollmentError) as exc:
                failures.append((line, row, str(exc)))
    click.echo(f"enrolled {enrolled} of {len(rows)} rows from {csv_file.name}")
    for line, _row, reason in failures:
        click.echo(f"  {csv_file.name}:{line}: {reason}")
    if errors_file and failures:
        with errors_file.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["line", "phone", "timezone", "error"])
            for line, row, reason in failures:
                writer.writerow([line, row.get("phone", ""), row.get("timezone", ""), reason])
        click.echo(f"rows that failed are in {errors_file}")
    if failures:
        sys.exit(1)


@main.command("alerts")
@click.option("--all", "show_all", is_flag=True, help="include resolved alerts")
@click.option("--resolve", "resolve_id", type=int, default=None, help="mark an alert resolved")
def alerts_command(show_all: bool, resolve_id: int | None) -> None:
    """List what coordinators must look at: crisis language, requests for a person."""
    from bot.clock import now

    settings = _settings()
    engine = get_engine(settings.database_url)
    with session_scope(engine) as session:
        if resolve_id is not None:
            alert = session.get(Alert, resolve_id)
            if alert is None:
                raise click.ClickException(f"no alert {resolve_id}")
            alert.resolved_at = now()
            session.add(alert)
            click.echo(f"alert {resolve_id} resolved")
            return
        query = select(Alert, Participant).join(
            Participant, col(Participant.id) == col(Alert.participant_id), isouter=True
        )
        if not show_all:
            query = query.where(col(Alert.resolved_at).is_(None))
        rows = session.exec(query.order_by(col(Alert.created_at).desc())).all()
        if not rows:
            click.echo("no open alerts")
            return
        for alert, participant in rows:
            who = f"participant {participant.id} {mask(participant.phone)}" if participant else (
                "unknown number"
            )
            state = " (resolved)" if alert.resolved_at else ""
            paused = " [paused]" if participant and participant.paused_at else ""
            click.echo(
                f"#{alert.id} {alert.created_at:%Y-%m-%d %H:%M} UTC {alert.kind.upper()}{state} "
                f"{who}{paused}: {alert.detail}"
            )


@main.command("resume")
@click.argument("phone")
def resume_command(phone: str) -> None:
    """Lift a crisis pause once a coordinator has spoken with the participant."""
    from sqlmodel import update

    from bot.clock import now
    from bot.participants.consent import resume
    from bot.participants.enrollment import find_by_phone
    from bot.participants.phones import normalize

    settings = _settings()
    engine = get_engine(settings.database_url)
    try:
        number = normalize(phone)
    except PhoneNumberError as exc:
        raise click.ClickException(str(exc)) from None
    with session_scope(engine) as session:
        participant = find_by_phone(session=session, phone=number)
        if participant is None:
            raise click.ClickException(f"{mask(number)} is not enrolled")
        from bot.care.programs import live_programs

        program = live_programs(settings.narratives_dir).get(participant.program)
        resume(session=session, participant=participant, program=program)
        # The coordinator has been in touch: the crisis alerts are settled with the pause.
        resolved = session.exec(
            update(Alert)
            .where(col(Alert.participant_id) == participant.id, col(Alert.kind) == "crisis",
                   col(Alert.resolved_at).is_(None))
            .values(resolved_at=now())
        ).rowcount
    click.echo(f"automated messages resumed for {mask(number)}")
    if resolved:
        click.echo(f"{resolved} open crisis alert{'s' if resolved != 1 else ''} resolved")


@main.command("check")
def check_command() -> None:
    """Validate every program and render each template; exit 1 on any problem."""
    from bot.tools.check import check_programs

    settings = _settings()
    problems = check_programs(settings.narratives_dir)
    for problem in problems:
        click.echo(problem)
    errors = [p for p in problems if not p.startswith("warning: ")]
    if errors:
        raise click.ClickException(f"{len(errors)} problem(s) in {settings.narratives_dir.name}/")
    click.echo("all programs are valid")


@main.group("export")
def export_group() -> None:
    """Export data for analysis as CSV: participant ids, never phone numbers."""


DECISION_COLUMNS = (
    "participant_id", "program", "decision", "decided_at", "decided_local", "available",
    "probability", "choice", "program_version", "outcome", "outcome_status",
)
RUN_COLUMNS = (
    "participant_id", "program", "intervention", "level", "reason", "started_at", "ended_at",
    "outcome", "end_reason", "program_version",
)


def _cell(value: object) -> object:
    """A CSV cell: UTC ISO times, true/false, empty for none."""
    from datetime import datetime

    from bot.clock import as_utc

    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    return value


def _export(query: Select[Any], program_name: str | None, out: Path | None,
            columns: tuple[str, ...], row_of: Callable[[tuple[Any, ...]], list[object]]) -> None:
    """Write `query`'s rows (those of `program_name`'s participants) as CSV to `out` or stdout."""
    from contextlib import nullcontext

    settings = _settings()
    engine = get_engine(settings.database_url)
    with session_scope(engine) as session:
        if program_name is not None:
            known = sorted(set(session.exec(select(Participant.program).distinct())))
            if program_name not in known:
                raise click.ClickException(
                    f"no participants in program {program_name!r} "
                    f"(programs with participants: {', '.join(known) or 'none'})"
                )
            query = query.where(col(Participant.program) == program_name)
        rows = session.exec(query.execution_options(yield_per=1000))
        try:
            target = out.open("w", newline="", encoding="utf-8") if out else nullcontext(
                sys.stdout
            )
        except OSError as exc:
            raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
        with target as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            count = 0
            for row in rows:
                writer.writerow([_cell(value) for value in row_of(tuple(row))])
                count += 1
    if out is not None:
        click.echo(f"wrote {count} rows to {out}", err=True)


@export_group.command("decisions")
@click.option("--program", "program_name", default=None, help="only this program's participants")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write to this CSV file (default: standard output)")
def export_decisions_command(program_name: str | None, out: Path | None) -> None:
    """Person x decision-point CSV: availability, probability, choice and proximal outcome."""
    from bot.care.timing import zone
    from bot.clock import as_utc
    from bot.store.models import DecisionPoint

    query = (
        select(DecisionPoint, Participant.program, Participant.timezone)
        .join(Participant, col(Participant.id) == col(DecisionPoint.participant_id))
        .order_by(col(DecisionPoint.participant_id), col(DecisionPoint.decided_at),
                  col(DecisionPoint.id))
    )

    def row_of(row: tuple[Any, ...]) -> list[object]:
        point, program, timezone = row
        local = as_utc(point.decided_at).astimezone(zone(str(timezone))).isoformat()
        return [
            point.participant_id, program, point.decision, point.decided_at, local,
            point.available, point.probability, point.choice, point.program_version,
            point.outcome, point.outcome_status,
        ]

    _export(query, program_name, out, DECISION_COLUMNS, row_of)


@export_group.command("interventions")
@click.option("--program", "program_name", default=None, help="only this program's participants")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write to this CSV file (default: standard output)")
def export_interventions_command(program_name: str | None, out: Path | None) -> None:
    """One row per micro intervention given: when, why, how it ended and its outcome."""
    from bot.store.models import InterventionRun

    query = (
        select(InterventionRun, Participant.program)
        .join(Participant, col(Participant.id) == col(InterventionRun.participant_id))
        .order_by(col(InterventionRun.participant_id), col(InterventionRun.started_at),
                  col(InterventionRun.id))
    )

    def row_of(row: tuple[Any, ...]) -> list[object]:
        run, program = row
        return [
            run.participant_id, program, run.intervention, run.level, run.reason,
            run.started_at, run.ended_at, run.outcome, run.end_reason, run.program_version,
        ]

    _export(query, program_name, out, RUN_COLUMNS, row_of)


@main.command("worker")
@click.option("--burst", is_flag=True, help="stop when the queue is empty")
def worker_command(burst: bool) -> None:
    """Run a worker: send deliveries from the queue."""
    from rq import SimpleWorker

    from bot.delivery.queues import delivery_queue
    from worker import context

    ctx = context.use(_settings())
    queue = delivery_queue(ctx.settings, ctx.redis)
    # SimpleWorker runs jobs in this process, so the pooled provider client stays warm.
    SimpleWorker([queue], connection=ctx.redis).work(burst=burst, with_scheduler=False)


@main.command("dispatcher")
@click.option("--once", is_flag=True, help="one tick, then exit")
def dispatcher_command(once: bool) -> None:
    """Run the dispatcher: move due deliveries from SQL to the queue."""
    from bot.delivery.queues import delivery_queue
    from worker import context, dispatcher

    ctx = context.use(_settings())
    dispatcher.run(
        engine=ctx.engine,
        queue=delivery_queue(ctx.settings, ctx.redis),
        settings=ctx.settings,
        once=once,
    )


@main.command("sandbox")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5001, type=int)
def sandbox_command(host: str, port: int) -> None:
    """Run the local Twilio-compatible sandbox and its phone page."""
    from bot.sandbox import serve_sandbox

    settings = _local_settings("sandbox")
    serve_sandbox(
        host,
        port,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        bot_inbound_url=f"{settings.public_base_url}/twilio/sms",
        bot_number=settings.twilio_from_number,
    )


@main.command("run")
@click.option("--port", default=5000, type=int, help="web port")
@click.option("--sandbox-port", default=5001, type=int, help="sandbox (phone page) port")
def run_command(port: int, sandbox_port: int) -> None:
    """Run everything locally: web, worker, dispatcher and the sandbox, on embedded defaults."""
    from bot.tools.local import run_all

    run_all(_local_settings("run"), port=port, sandbox_port=sandbox_port)


@main.command("bench")
@click.option("--quick", is_flag=True, help="tiny sizes, for a smoke run")
def bench_command(quick: bool) -> None:
    """Measure delivery and webhook throughput; the last line is one JSON object."""
    from bot.tools.bench import run_benchmark

    run_benchmark(quick=quick)


@main.command("simulate")
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
def simulate_command(
    program_name: str, persona: str, days: int, participants: int, seed: int,
    start: str | None, timezones: tuple[str, ...], database_url: str | None,
) -> None:
    """Run simulated participants through a program on a virtual clock, on the real stack.

    One participant: their transcript in local time, then the summary; the last line is JSON.
    """
    from datetime import date

    from bot.tools.simulate import DEFAULT_START, Plan, SimulationError, run_command

    settings = _settings()
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
        )
    except (SimulationError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None


if __name__ == "__main__":
    main()
