"""`bot export decisions|interventions`: CSV for analysis, by participant id, never by phone."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.store.models import DecisionPoint, Delivery, InterventionRun, Participant
from bot.tools.cli import main
from tests.conftest import ROOT, TEST_DATABASE_URL, TEST_REDIS_URL

PARENT = "+14155550123"
OTHER = "+13125550188"
DECISION_COLUMNS = [
    "participant_id", "program", "decision", "decided_at", "decided_local", "available",
    "probability", "choice", "program_version", "outcome", "outcome_status",
]
Export = Callable[..., Result]
RUN_COLUMNS = [
    "participant_id", "program", "intervention", "level", "reason", "started_at", "ended_at",
    "outcome", "end_reason", "program_version",
]


@pytest.fixture
def export(engine: Engine, tmp_path: Path) -> Export:
    """Run `bot export ARGS` against the test database."""

    def run(*args: str) -> Result:
        env = {
            "TEND_ENV": "test",
            "TEND_INSTANCE_DIR": str(tmp_path / "instance"),
            "DATABASE_URL": TEST_DATABASE_URL,
            "REDIS_URL": TEST_REDIS_URL,
            "NARRATIVES_DIR": str(ROOT / "narratives"),
        }
        return CliRunner().invoke(main, ["export", *args], env=env, catch_exceptions=False)

    return run


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture
def history(session: Session) -> dict[str, int]:
    """Two parents in two programs, each with a micro intervention and its decision points."""
    parent = Participant(phone=PARENT, program="positive-parenting",
                         timezone="America/New_York",
                         enrolled_at=datetime(2026, 3, 1, 15, tzinfo=UTC))
    other = Participant(phone=OTHER, program="medication-adherence", timezone="America/Chicago",
                        enrolled_at=datetime(2026, 6, 1, 15, tzinfo=UTC))
    session.add_all([parent, other])
    session.flush()
    assert parent.id is not None and other.id is not None
    ended = InterventionRun(
        participant_id=parent.id, intervention="gratitude", level="positive",
        reason="level 2 of 4 (Positive moments) is in need",
        started_at=datetime(2026, 3, 2, 23, tzinfo=UTC),
        ended_at=datetime(2026, 3, 9, 12, tzinfo=UTC), outcome="achieved",
        end_reason="completed", program_version="a1b2c3d4e5f6",
    )
    running = InterventionRun(
        participant_id=parent.id, intervention="specific_praise", level="positive",
        reason="level 2 of 4 (Positive moments) comes first",
        started_at=datetime(2026, 3, 10, 22, tzinfo=UTC), program_version="a1b2c3d4e5f6",
    )
    doses = InterventionRun(
        participant_id=other.id, intervention="reasons", level="understanding",
        reason="level 1 of 2 (Understanding) comes first",
        started_at=datetime(2026, 6, 2, 14, tzinfo=UTC), program_version="0f0f0f0f0f0f",
    )
    session.add_all([ended, running, doses])
    session.flush()
    prompts = [
        Delivery(participant_id=p.id or 0, kind="event", run_id=r.id, event_key=key,
                 due_at=due)
        for p, r, key, due in [
            (parent, ended, "gratitude/gratitude_exercise#2", datetime(2026, 3, 4, 0, tzinfo=UTC)),
            (parent, ended, "gratitude/gratitude_exercise#3", datetime(2026, 3, 8, 23, tzinfo=UTC)),
            (other, doses, "reasons/dose#1", datetime(2026, 6, 3, 13, tzinfo=UTC)),
        ]
    ]
    session.add_all(prompts)
    session.flush()
    session.add_all([
        # Before the spring change (EST, -05:00) and after it (EDT, -04:00).
        DecisionPoint(participant_id=parent.id, run_id=ended.id, delivery_id=prompts[0].id or 0,
                      decision="gratitude/gratitude_exercise#2@1", available=True,
                      probability=0.5, choice="gratitude_exercise", program_version="a1b2c3d4e5f6",
                      decided_at=datetime(2026, 3, 4, 0, 10, tzinfo=UTC), outcome=4.0,
                      outcome_status="answered"),
        DecisionPoint(participant_id=parent.id, run_id=ended.id, delivery_id=prompts[1].id or 0,
                      decision="gratitude/gratitude_exercise#3@1", available=False,
                      probability=None, choice="skip", program_version="a1b2c3d4e5f6",
                      decided_at=datetime(2026, 3, 8, 23, 5, tzinfo=UTC)),
        DecisionPoint(participant_id=other.id, run_id=doses.id, delivery_id=prompts[2].id or 0,
                      decision="reasons/dose#1@3", available=True, probability=0.25,
                      choice="dose", program_version="0f0f0f0f0f0f",
                      decided_at=datetime(2026, 6, 3, 13, tzinfo=UTC),
                      outcome_status="missing"),
    ])
    session.commit()
    return {"parent": parent.id, "other": other.id}


def test_decisions_are_one_row_per_person_and_decision_point(
    export: Export, history: dict[str, int]
) -> None:
    result = export("decisions")
    assert result.exit_code == 0, result.output
    header, *rows = rows_of(result.stdout)
    assert header == DECISION_COLUMNS
    parent, other = str(history["parent"]), str(history["other"])
    assert rows == [
        [parent, "positive-parenting", "gratitude/gratitude_exercise#2@1",
         "2026-03-04T00:10:00+00:00", "2026-03-03T19:10:00-05:00", "true", "0.5",
         "gratitude_exercise", "a1b2c3d4e5f6", "4.0", "answered"],
        [parent, "positive-parenting", "gratitude/gratitude_exercise#3@1",
         "2026-03-08T23:05:00+00:00", "2026-03-08T19:05:00-04:00", "false", "", "skip",
         "a1b2c3d4e5f6", "", ""],
        [other, "medication-adherence", "reasons/dose#1@3", "2026-06-03T13:00:00+00:00",
         "2026-06-03T08:00:00-05:00", "true", "0.25", "dose", "0f0f0f0f0f0f", "", "missing"],
    ]


def test_interventions_are_one_row_per_micro_intervention_given(
    export: Export, history: dict[str, int]
) -> None:
    result = export("interventions")
    assert result.exit_code == 0, result.output
    header, *rows = rows_of(result.stdout)
    assert header == RUN_COLUMNS
    parent, other = str(history["parent"]), str(history["other"])
    assert rows == [
        [parent, "positive-parenting", "gratitude", "positive",
         "level 2 of 4 (Positive moments) is in need", "2026-03-02T23:00:00+00:00",
         "2026-03-09T12:00:00+00:00", "achieved", "completed", "a1b2c3d4e5f6"],
        [parent, "positive-parenting", "specific_praise", "positive",
         "level 2 of 4 (Positive moments) comes first", "2026-03-10T22:00:00+00:00", "", "",
         "", "a1b2c3d4e5f6"],
        [other, "medication-adherence", "reasons", "understanding",
         "level 1 of 2 (Understanding) comes first", "2026-06-02T14:00:00+00:00", "", "", "",
         "0f0f0f0f0f0f"],
    ]


@pytest.mark.parametrize("table", ["decisions", "interventions"])
def test_no_phone_number_is_exported(export: Export, history: dict[str, int], table: str) -> None:
    output = export(table).output
    for phone in (PARENT, OTHER):
        assert phone not in output
        assert phone[2:] not in output and phone[-7:] not in output


@pytest.mark.parametrize("table", ["decisions", "interventions"])
def test_one_program_only(export: Export, history: dict[str, int], table: str) -> None:
    result = export(table, "--program", "medication-adherence")
    assert result.exit_code == 0, result.output
    header, *rows = rows_of(result.stdout)
    assert len(rows) == 1
    assert {row[header.index("program")] for row in rows} == {"medication-adherence"}
    assert {row[0] for row in rows} == {str(history["other"])}


def test_a_program_nobody_is_in_is_an_error_naming_the_programs(
    export: Export, history: dict[str, int]
) -> None:
    result = export("decisions", "--program", "positive-parenthood")
    assert result.exit_code == 1
    assert ("no participants in program 'positive-parenthood' (programs with participants: "
            "medication-adherence, positive-parenting)") in result.output


def test_out_writes_a_file_and_says_how_many_rows(
    export: Export, history: dict[str, int], tmp_path: Path
) -> None:
    target = tmp_path / "decisions.csv"
    result = export("decisions", "--out", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"wrote 3 rows to {target}" in result.stderr
    header, *rows = rows_of(target.read_text(encoding="utf-8"))
    assert header == DECISION_COLUMNS and len(rows) == 3


def test_out_into_a_missing_folder_is_a_clear_error(
    export: Export, history: dict[str, int], tmp_path: Path
) -> None:
    result = export("interventions", "--out", str(tmp_path / "nowhere" / "runs.csv"))
    assert result.exit_code == 1
    assert "cannot write" in result.output and "No such file or directory" in result.output
    assert "Traceback" not in result.output


def test_an_empty_database_gives_the_header_only(export: Export) -> None:
    for table, columns in (("decisions", DECISION_COLUMNS), ("interventions", RUN_COLUMNS)):
        result = export(table)
        assert result.exit_code == 0, result.output
        assert rows_of(result.stdout) == [columns]
