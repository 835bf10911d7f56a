"""`bot staff`: accounts made from a script (the password on standard input), listed, removed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.people import staff
from bot.store.support import AuditEvent, Staff
from bot.tools.cli import main
from tests.conftest import ROOT, TEST_DATABASE_URL, TEST_REDIS_URL

Run = Callable[..., Result]
PASSWORD = "first admin passphrase"


@pytest.fixture
def bot(engine: Engine, tmp_path: Path) -> Run:
    def run(*args: str, stdin: str | None = None) -> Result:
        env = {"TEND_ENV": "test", "TEND_INSTANCE_DIR": str(tmp_path / "instance"),
               "DATABASE_URL": TEST_DATABASE_URL, "REDIS_URL": TEST_REDIS_URL,
               "NARRATIVES_DIR": str(ROOT / "narratives")}
        return CliRunner().invoke(main, list(args), input=stdin, env=env)

    return run


def accounts(session: Session) -> list[Staff]:
    session.expire_all()
    return list(session.exec(select(Staff)).all())


def test_the_first_admin_is_added_with_the_password_from_standard_input(
    bot: Run, session: Session
) -> None:
    result = bot("staff", "add", "Ada@Clinic.Example", "--role", "admin", stdin=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "added ada@clinic.example as admin" in result.output
    [ada] = accounts(session)
    assert staff.authenticate(session=session, email="ada@clinic.example", password=PASSWORD).ok
    logged = session.exec(select(AuditEvent)).one()
    assert (logged.actor, logged.action, logged.detail) == (
        "cli", "add-staff", "ada@clinic.example as admin")
    assert ada.role == "admin"


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (("--role", "owner"), PASSWORD, "'owner' is not one of"),
    (("--role", "coach"), "short\n", "at least 12 characters"),
    (("--role", "coach"), "", "no password on standard input"),
])
def test_a_bad_role_or_password_is_refused_and_nothing_is_added(
    bot: Run, session: Session, args: tuple[str, ...], stdin: str, message: str
) -> None:
    result = bot("staff", "add", "cole@clinic.example", *args, stdin=stdin)
    assert result.exit_code != 0
    assert message in result.output
    assert accounts(session) == []


def test_list_shows_each_account_and_remove_keeps_the_row_but_ends_sign_in(
    bot: Run, session: Session
) -> None:
    bot("staff", "add", "ada@clinic.example", "--role", "admin", stdin=PASSWORD)
    bot("staff", "add", "cole@clinic.example", "--role", "coach", "--name", "Cole",
        stdin=PASSWORD)
    listing = bot("staff", "list")
    assert "cole@clinic.example" in listing.output and "coach" in listing.output
    assert "never" in listing.output
    removed = bot("staff", "remove", "cole@clinic.example")
    assert removed.exit_code == 0 and "can no longer sign in" in removed.output
    assert "cole@clinic.example" not in bot("staff", "list").output
    assert "removed" in bot("staff", "list", "--all").output
    assert {p.email for p in accounts(session)} == {"ada@clinic.example", "cole@clinic.example"}
    assert staff.authenticate(session=session, email="cole@clinic.example",
                              password=PASSWORD).outcome == "wrong"
    last = bot("staff", "remove", "ada@clinic.example")
    assert last.exit_code != 0 and "last admin" in last.output


def test_a_locked_out_admin_gets_a_new_password_from_the_command_line(
    bot: Run, session: Session
) -> None:
    bot("staff", "add", "ada@clinic.example", "--role", "admin", stdin=PASSWORD)
    for _ in range(5):
        staff.authenticate(session=session, email="ada@clinic.example", password="guess guess!")
        session.commit()
    result = bot("staff", "password", "ada@clinic.example", stdin="a brand new passphrase\n")
    assert result.exit_code == 0, result.output
    assert staff.authenticate(session=session, email="ada@clinic.example",
                              password="a brand new passphrase").ok
