"""`bot enroll` and `bot import`: participants enrolled one at a time or from a CSV file."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click

from bot.care.timing import TimezoneError
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
    """Enroll everyone in CSV_FILE (columns: phone, and optionally timezone)."""
    settings = load_settings()
    program = find_program(settings, program_name)
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
        _write_failures(errors_file, failures)
        click.echo(f"rows that failed are in {errors_file}")
    if failures:
        sys.exit(1)


def _write_failures(errors_file: Path, failures: list[tuple[int, dict[str, str], str]]) -> None:
    """The rows that failed, with their line in the input and the reason, as CSV."""
    with errors_file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "phone", "timezone", "error"])
        for line, row, reason in failures:
            writer.writerow([line, row.get("phone", ""), row.get("timezone", ""), reason])
