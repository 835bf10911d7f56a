"""The `bot` command as a coordinator uses it: enroll, import, alerts, resume, check, migrate."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from freezegun import freeze_time
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from bot.store.db import get_engine
from bot.store.models import Alert, Delivery, DeliveryStatus, Participant
from bot.tools.cli import main
from tests.conftest import ROOT, TEST_DATABASE_URL, TEST_REDIS_URL

# A parent the coordinator enrolls by hand after a clinic visit.
PARENT = "+14155550123"
PARENT_AS_TYPED = "(415) 555-0123"
PARENT_MASKED = "+•••••••0123"
CHICAGO = ZoneInfo("America/Chicago")

Run = Callable[..., Result]


@pytest.fixture
def bot(engine: Engine, tmp_path: Path) -> Run:
    """Run `bot ARGS` against the test database, Redis and (by default) the shipped narratives."""

    def run(*args: str, narratives: Path | None = None, database_url: str | None = None) -> Result:
        env = {
            "TEND_ENV": "test",
            "TEND_INSTANCE_DIR": str(tmp_path / "instance"),
            "DATABASE_URL": database_url or TEST_DATABASE_URL,
            "REDIS_URL": TEST_REDIS_URL,
            "NARRATIVES_DIR": str(narratives or ROOT / "narratives"),
        }
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return run


def participants(session: Session) -> list[Participant]:
    session.expire_all()
    return list(session.exec(select(Participant)).all())


def deliveries(session: Session, participant: Participant, **where: Any) -> list[Delivery]:
    session.expire_all()
    query = select(Delivery).where(Delivery.participant_id == participant.id)
    for name, value in where.items():
        query = query.where(getattr(Delivery, name) == value)
    return list(session.exec(query.order_by(col(Delivery.due_at))).all())


# --- bot enroll ---------------------------------------------------------------------------------


@freeze_time("2026-06-01 15:00:00")
def test_enroll_stores_the_number_in_e164_and_plans_the_program(bot: Run, session: Session):
    result = bot("enroll", PARENT_AS_TYPED, "--program", "daily-checkin", "--tz", "America/Chicago")
    assert result.exit_code == 0, result.output
    assert f"enrolled {PARENT_MASKED} in daily-checkin as participant 1" in result.output
    assert "0123" in result.output and "5550123" not in result.output

    [participant] = participants(session)
    assert participant.phone == PARENT
    assert participant.program == "daily-checkin"
    assert participant.timezone == "America/Chicago"
    assert participant.enrolled_via == "cli"

    [welcome] = deliveries(session, participant, kind="welcome")
    assert welcome.due_at == datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
    assert welcome.status == DeliveryStatus.SCHEDULED
    events = deliveries(session, participant, kind="event")
    assert len(events) == 14  # a week of a morning tip and an evening question
    assert {e.due_at.astimezone(CHICAGO).time() for e in events} == {time(10), time(19)}
    assert events[0].due_at.astimezone(CHICAGO).date().isoformat() == "2026-06-02"


def test_enroll_uses_the_default_time_zone_when_none_is_given(bot: Run, session: Session):
    assert bot("enroll", PARENT, "--program", "daily-checkin").exit_code == 0
    [participant] = participants(session)
    assert participant.timezone == "America/New_York"


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("12", "has the wrong number of digits"),
        ("abc", "is not a phone number"),
        ("+1 555 0100 000", "is not a valid number"),
        ("", "no phone number given"),
    ],
)
def test_enroll_refuses_a_bad_number_and_stores_nothing(
    bot: Run, session: Session, number: str, reason: str
):
    result = bot("enroll", number, "--program", "daily-checkin")
    assert result.exit_code != 0
    assert "Error:" in result.output
    assert reason in result.output
    assert "Traceback" not in result.output
    if len(number) > 4:
        assert number not in result.output
    assert participants(session) == []
    assert session.exec(select(func.count()).select_from(Delivery)).one() == 0


def test_enroll_in_an_unknown_program_lists_the_programs(bot: Run, session: Session):
    result = bot("enroll", PARENT, "--program", "sleep-well")
    assert result.exit_code != 0
    assert ("no program named 'sleep-well' (programs: daily-checkin, medication-adherence, "
            "positive-parenting)") in result.output
    assert participants(session) == []


@pytest.mark.parametrize("tz", ["Mars/Base", "America", "chicago"])
def test_enroll_refuses_an_unknown_time_zone(bot: Run, session: Session, tz: str):
    result = bot("enroll", PARENT, "--program", "daily-checkin", "--tz", tz)
    assert result.exit_code != 0
    assert f"'{tz}' is not a time zone (use a name like America/Chicago)" in result.output
    assert participants(session) == []


def test_enrolling_the_same_number_twice_is_refused(bot: Run, session: Session):
    assert bot("enroll", PARENT, "--program", "daily-checkin").exit_code == 0
    result = bot("enroll", "415-555-0123", "--program", "daily-checkin", "--tz", "America/Denver")
    assert result.exit_code != 0
    assert f"{PARENT_MASKED} is already enrolled in daily-checkin (participant 1)" in result.output
    [participant] = participants(session)
    assert participant.timezone == "America/New_York"  # the first enrollment stands


# --- bot import ---------------------------------------------------------------------------------

ROSTER = """\
phone,timezone,name
(415) 555-0123,America/Chicago,Ana
12,America/Chicago,Ben
415 555 0124,Mars/Base,Cy
+1 415 555 0125,,Dee
415-555-0123,America/Denver,Ana again
abc,,Eve
"""


def test_import_enrolls_the_good_rows_and_reports_each_bad_one(
    bot: Run, session: Session, tmp_path: Path
):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    errors = tmp_path / "failed.csv"

    result = bot("import", str(roster), "--program", "daily-checkin", "--errors", str(errors))

    assert result.exit_code == 1
    # Row 6 is Ana again: already in the program, so skipped rather than a failure.
    assert "enrolled 2 of 6 rows from roster.csv; 1 already enrolled, skipped" in result.output
    assert "columns daily-checkin does not use, passed over: name" in result.output
    assert "roster.csv:3: •• has the wrong number of digits" in result.output
    assert "roster.csv:4: 'Mars/Base' is not a time zone" in result.output
    assert "roster.csv:7: that is not a phone number" in result.output
    for fine in (2, 5, 6):
        assert f"roster.csv:{fine}:" not in result.output

    enrolled = {p.phone: p.timezone for p in participants(session)}
    assert enrolled == {"+14155550123": "America/Chicago", "+14155550125": "America/New_York"}
    assert all(p.enrolled_via == "import" for p in participants(session))

    with errors.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # Every cell as the file had it, so the rows can be fixed and the file run again.
    assert [(r["row"], r["phone"], r["timezone"], r["name"]) for r in rows] == [
        ("3", "12", "America/Chicago", "Ben"),
        ("4", "415 555 0124", "Mars/Base", "Cy"),
        ("7", "abc", "", "Eve"),
    ]
    assert all(r["error"] for r in rows)


def test_running_the_same_file_again_skips_everyone_already_enrolled(
    bot: Run, session: Session, tmp_path: Path
):
    roster = tmp_path / "roster.csv"
    roster.write_text("phone\n415 555 0123\n415 555 0124\n", encoding="utf-8")
    assert bot("import", str(roster), "--program", "daily-checkin").exit_code == 0
    again = bot("import", str(roster), "--program", "daily-checkin")
    assert again.exit_code == 0, again.output
    assert "enrolled 0 of 2 rows from roster.csv; 2 already enrolled, skipped" in again.output
    assert len(participants(session)) == 2


def test_import_sets_the_programs_attributes_from_their_columns(
    bot: Run, session: Session, tmp_path: Path
):
    roster = tmp_path / "roster.csv"
    roster.write_text("phone,dose_time\n415 555 0123,20:00\n415 555 0124,\n"
                      "415 555 0125,8pm\n", encoding="utf-8")
    result = bot("import", str(roster), "--program", "medication-adherence")
    assert result.exit_code == 1
    assert "roster.csv:4: dose_time should be a local time like 09:00" in result.output
    doses = {p.phone: p.attributes for p in participants(session)}
    assert doses == {"+14155550123": {"dose_time": "20:00"}, "+14155550124": {}}


def test_import_of_a_clean_file_succeeds(bot: Run, session: Session, tmp_path: Path):
    roster = tmp_path / "roster.csv"
    # Spreadsheet exports: a byte-order mark and a capitalised header.
    roster.write_text("\ufeffPhone\n415 555 0123\n415 555 0124\n", encoding="utf-8")
    result = bot("import", str(roster), "--program", "daily-checkin")
    assert result.exit_code == 0, result.output
    assert "enrolled 2 of 2 rows from roster.csv" in result.output
    assert len(participants(session)) == 2


def test_import_without_a_phone_column_says_so(bot: Run, session: Session, tmp_path: Path):
    roster = tmp_path / "roster.csv"
    roster.write_text("number,timezone\n4155550123,America/Chicago\n", encoding="utf-8")
    result = bot("import", str(roster), "--program", "daily-checkin")
    assert result.exit_code != 0
    assert "roster.csv:1: the file needs a 'phone' column" in result.output
    assert participants(session) == []


# --- bot alerts and bot resume ------------------------------------------------------------------


def test_alerts_lists_open_alerts_with_masked_numbers_and_resolves_them(
    bot: Run, session: Session, text_bot: Callable[..., Any]
):
    text_bot(PARENT, "JOIN")
    text_bot(PARENT, "I want to die")
    session.add(Alert(kind="human", detail="a caller asked for a person"))
    session.commit()

    result = bot("alerts")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == 2
    crisis = next(line for line in lines if "CRISIS" in line)
    assert crisis.startswith("#1 ")
    assert f"participant 1 {PARENT_MASKED} [paused]" in crisis
    assert "want to die" in crisis
    assert any("HUMAN unknown number: a caller asked for a person" in line for line in lines)
    assert "5550123" not in result.output

    result = bot("alerts", "--resolve", "1")
    assert result.exit_code == 0
    assert "alert 1 resolved" in result.output
    open_alerts = bot("alerts").output
    assert "#1 " not in open_alerts
    assert "#2 " in open_alerts
    every_alert = bot("alerts", "--all").output
    assert any(line.startswith("#1 ") and "(resolved)" in line for line in every_alert.splitlines())


def test_alerts_says_when_there_is_nothing_to_look_at(bot: Run):
    result = bot("alerts")
    assert result.exit_code == 0
    assert result.output.strip() == "no open alerts"


def test_resolving_an_alert_that_does_not_exist_fails(bot: Run):
    result = bot("alerts", "--resolve", "99")
    assert result.exit_code != 0
    assert "no alert 99" in result.output


def test_resume_lifts_a_crisis_pause_and_plans_the_events_still_ahead(
    bot: Run, session: Session, text_bot: Callable[..., Any]
):
    with freeze_time("2026-06-01 16:00:00"):  # noon in New York
        text_bot(PARENT, "JOIN")
        text_bot(PARENT, "I want to die")
    [participant] = participants(session)
    assert participant.paused_at is not None
    assert deliveries(session, participant, kind="event", status=DeliveryStatus.SCHEDULED) == []

    resumed_at = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)  # 08:00 in New York, two days later
    with freeze_time(resumed_at):
        result = bot("resume", "415.555.0123")
    assert result.exit_code == 0, result.output
    assert f"automated messages resumed for {PARENT_MASKED}" in result.output

    [participant] = participants(session)
    assert participant.paused_at is None
    ahead = deliveries(session, participant, kind="event", status=DeliveryStatus.SCHEDULED)
    assert len(ahead) == 12  # six days of two events; the two of 2 June are past
    assert all(d.due_at > resumed_at for d in ahead)
    assert ahead[0].due_at.astimezone(ZoneInfo("America/New_York")).isoformat() == (
        "2026-06-03T10:00:00-04:00"
    )


def test_resume_of_a_number_that_is_not_enrolled_fails(bot: Run):
    result = bot("resume", PARENT)
    assert result.exit_code != 0
    assert f"{PARENT_MASKED} is not enrolled" in result.output


# --- bot check ----------------------------------------------------------------------------------


def test_check_passes_on_the_shipped_narratives(bot: Run):
    result = bot("check")
    assert result.exit_code == 0, result.output
    assert "all programs are valid" in result.output


def _replace(old: str, new: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        path = folder / "program.yaml"
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return change


def _welcome(body: str) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        (folder / "welcome.txt").write_text(body, encoding="utf-8")

    return change


def _line_of(text: str) -> Callable[[Path], int]:
    """The line of program.yaml that holds `text` (after the change)."""

    def find(folder: Path) -> int:
        lines = (folder / "program.yaml").read_text(encoding="utf-8").splitlines()
        return next(number for number, line in enumerate(lines, start=1) if text in line)

    return find


@pytest.mark.parametrize(
    ("change", "where", "reason"),
    [
        (
            _replace("description: a one-week", "description: week one: a one-week"),
            ("program.yaml", _line_of("description: week one")),
            "not valid YAML",
        ),
        (
            _replace("template: daily_tip.txt", "template: tip_of_the_day.txt"),
            ("program.yaml", _line_of("template: tip_of_the_day.txt")),
            "template 'tip_of_the_day.txt' does not exist",
        ),
        (
            _welcome("Welcome to {{ program.title }}.\nReply STOP to stop.\n{{ program.title }\n"),
            ("welcome.txt", lambda folder: 3),
            "unexpected '}'",
        ),
        (
            _welcome("Welcome.\nHello {{ participant.nickname }}!\nReply STOP to stop.\n"),
            ("welcome.txt", lambda folder: 2),
            "no attribute 'nickname'",
        ),
        (
            _welcome("Welcome.\n\nYou have {{ points }} points.\n"),
            ("welcome.txt", lambda folder: 3),
            "'points' is undefined",
        ),
    ],
    ids=["broken yaml", "missing template", "jinja syntax error", "unknown attribute", "undefined"],
)
def test_check_fails_naming_the_file_and_line_of_each_problem(
    bot: Run,
    tmp_path: Path,
    change: Callable[[Path], None],
    where: tuple[str, Callable[[Path], int]],
    reason: str,
):
    narratives = tmp_path / "narratives"
    folder = narratives / "daily-checkin"
    shutil.copytree(ROOT / "narratives" / "daily-checkin", folder)
    change(folder)
    filename, line = where

    result = bot("check", narratives=narratives)

    assert result.exit_code == 1
    assert f"daily-checkin/{filename}:{line(folder)}: " in result.output
    assert reason in result.output
    assert "problem(s) in narratives/" in result.output


def test_check_reports_a_narratives_folder_that_does_not_exist(bot: Run, tmp_path: Path):
    result = bot("check", narratives=tmp_path / "narratves")
    assert result.exit_code == 1
    assert "narratves/: no such folder (check NARRATIVES_DIR)" in result.output
    assert "Traceback" not in result.output


# --- bot migrate --------------------------------------------------------------------------------


def test_migrate_creates_the_tables_in_a_fresh_sqlite_file(bot: Run, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'fresh' / 'tend.sqlite3'}"
    result = bot("migrate", database_url=url)
    assert result.exit_code == 0, result.output
    assert "database is up to date" in result.output
    tables = set(inspect(get_engine(url)).get_table_names())
    assert {"participant", "delivery", "alert", "answer", "alembic_version"} <= tables
    assert bot("migrate", database_url=url).exit_code == 0  # and again, harmlessly


# --- bot sandbox and bot run: local only --------------------------------------------------------

# A production host's environment, complete: nothing but TEND_ENV stops these commands.
PRODUCTION = {
    "TEND_ENV": "production",
    "SECRET_KEY": "a-long-random-production-secret",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "a-real-auth-token",
    "TWILIO_FROM_NUMBER": "+14155550100",
    "DATABASE_URL": TEST_DATABASE_URL,
    "REDIS_URL": TEST_REDIS_URL,
    "PUBLIC_BASE_URL": "https://tend.example.org",
}


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What `bot sandbox` and `bot run` started (recorded, not run)."""
    import bot.sandbox
    import bot.tools.local

    calls: list[str] = []
    monkeypatch.setattr(bot.sandbox, "serve_sandbox", lambda *a, **k: calls.append("sandbox"))
    monkeypatch.setattr(bot.tools.local, "run_all", lambda *a, **k: calls.append("run"))
    return calls


@pytest.mark.parametrize("command", ["sandbox", "run"])
@pytest.mark.parametrize(
    "environ", [PRODUCTION, {"TEND_ENV": "production"}], ids=["complete", "incomplete"]
)
def test_the_local_stand_ins_refuse_production_settings(
    started: list[str], command: str, environ: dict[str, str]
):
    result = CliRunner().invoke(main, [command], env=environ)
    assert result.exit_code != 0
    assert f"bot {command} is for local use and does not run with TEND_ENV=production" in (
        result.output
    )
    assert started == []


@pytest.mark.parametrize("command", ["sandbox", "run"])
def test_the_local_stand_ins_start_in_development(started: list[str], command: str, tmp_path):
    env = {"TEND_ENV": "development", "TEND_INSTANCE_DIR": str(tmp_path), "DATABASE_URL": "",
           "REDIS_URL": ""}
    result = CliRunner().invoke(main, [command], env=env)
    assert result.exit_code == 0, result.output
    assert started == [command]


# --- bot bench ----------------------------------------------------------------------------------


@pytest.mark.parametrize("only", ["deliveries", "delivery,hubs"])
def test_bench_refuses_a_section_it_does_not_have_and_lists_the_sections(only: str):
    result = CliRunner().invoke(main, ["bench", "--only", only])
    assert result.exit_code == 2
    assert "is not a section; choose from delivery, dispatch, inbound, hub, simulation" in (
        result.output
    )
