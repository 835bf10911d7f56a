"""`bot export`: data for analysis as CSV, participant ids and never phone numbers."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from sqlmodel import col, select
from sqlmodel.sql.expression import Select

from bot.store.db import get_engine, session_scope
from bot.store.models import Participant
from bot.tools.commands import load_settings

DECISION_COLUMNS = (
    "participant_id", "program", "decision", "decided_at", "decided_local", "available",
    "probability", "choice", "program_version", "outcome", "outcome_status",
)
RUN_COLUMNS = (
    "participant_id", "program", "intervention", "level", "reason", "started_at", "ended_at",
    "outcome", "end_reason", "program_version",
)


@click.group("export")
def export_group() -> None:
    """Export data for analysis as CSV: participant ids, never phone numbers."""


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

    settings = load_settings()
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
