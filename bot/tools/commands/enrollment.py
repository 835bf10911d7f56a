"""`bot enroll` and `bot import`: participants enrolled one at a time or from a CSV file."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import click

from bot.care.timing import TimezoneError
from bot.participants import importing
from bot.participants.enrollment import EnrollmentError, enroll
from bot.participants.phones import PhoneNumberError, mask
from bot.store.db import get_engine, session_scope
from bot.tools.commands import find_program, load_settings


@click.command("enroll")
@click.argument("phone")
@click.option("--program", "program_name", required=True, help="program folder name")
@click.option("--tz", "timezone", default=None, help="IANA time zone, e.g. America/Chicago")
@click.option("--attr", "attrs", multiple=True, metavar="NAME=VALUE",
              help="a participant attribute the program uses, e.g. wake_time=06:30")
def enroll_command(
    phone: str, program_name: str, timezone: str | None, attrs: tuple[str, ...]
) -> None:
    """Enroll PHONE in a program; the welcome goes out at the next allowed moment."""
    settings = load_settings()
    program = find_program(settings, program_name)
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


@click.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--program", "program_name", required=True, help="program folder name")
@click.option("--errors", "errors_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="also write the rows that failed, with the reason, to this CSV")
def import_command(csv_file: Path, program_name: str, errors_file: Path | None) -> None:
    """Enroll everyone in CSV_FILE (columns: phone; optionally timezone and the program's
    attributes). Numbers already in the program are skipped, so a file can be run again."""
    settings = load_settings()
    program = find_program(settings, program_name)
    engine = get_engine(settings.database_url)
    try:
        roster = importing.read_roster(csv_file.read_bytes(), program)
    except importing.ImportFileError as exc:
        raise click.ClickException(f"{csv_file.name}:{exc.row}: {exc.reason}") from None
    if roster.ignored:
        click.echo(f"columns {program.name} does not use, passed over: "
                   f"{', '.join(roster.ignored)}")
    counts: Counter[str] = Counter()
    failures: list[tuple[int, tuple[str, ...], str]] = []
    with click.progressbar(roster.rows, label="enrolling", file=sys.stderr) as progress:
        for row in progress:
            outcome = importing.enroll_row(engine=engine, program=program, roster=roster,
                                           row=row, default_timezone=settings.default_timezone)
            counts[outcome.kind] += 1
            if outcome.kind == "failed":
                failures.append((row.number, row.values, outcome.reason))
    skipped = f"; {counts['skipped']} already enrolled, skipped" if counts["skipped"] else ""
    click.echo(f"enrolled {counts['enrolled']} of {len(roster.rows)} rows from "
               f"{csv_file.name}{skipped}")
    for number, _values, reason in failures:
        click.echo(f"  {csv_file.name}:{number}: {reason}")
    if errors_file and failures:
        errors_file.write_text(importing.failed_rows_csv(roster.header, failures),
                               encoding="utf-8")
        click.echo(f"rows that failed are in {errors_file}")
    if failures:
        sys.exit(1)
