"""The release phase: `bot migrate` changes nothing the second time and says so, and the
previous release keeps working on the schema it leaves, as that release's dynos do while the
new ones start (expand, then contract).

The previous release is the commit before the newest migration was added (HEAD while that
migration is not yet committed). Its code is read out of git into a temporary folder, never
checked out over this tree, and run in a subprocess with that folder first on its path: this
very file, whose `__main__` part imports only what that folder holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANA = "+14155550301"  # enrolled by the previous release before the migration
BEN = "+14155550302"  # enrolled by the previous release after it


# --- This tree's side: pytest --------------------------------------------------------------


def git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=True).stdout


def newest_migration() -> Any:
    from alembic.script import ScriptDirectory

    from bot.store.migrate import MIGRATIONS

    scripts = ScriptDirectory(str(MIGRATIONS))
    return scripts.get_revision(scripts.get_current_head())


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's code (bot/, worker/, narratives/), read out of git."""
    try:
        path = os.path.relpath(newest_migration().path, ROOT)
        added = git("log", "-n1", "--diff-filter=A", "--format=%H", "--", path).decode().strip()
        tree = git("archive", "--format=tar", f"{added}^" if added else "HEAD",
                   "bot", "worker", "narratives")
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"needs a git checkout with its history: {exc}")
    folder = tmp_path_factory.mktemp("previous-release")
    with tarfile.open(fileobj=BytesIO(tree)) as archive:
        archive.extractall(folder, filter="data")
    return folder


@pytest.fixture
def database() -> Iterator[str]:
    """An empty database of this test's own, on the test server."""
    import psycopg

    from tests.conftest import TEST_DATABASE_URL

    server, name = TEST_DATABASE_URL.rsplit("/", 1)[0], f"tend_release_{os.getpid()}"
    admin = TEST_DATABASE_URL.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    yield f"{server}/{name}"
    from bot.store.db import get_engine

    get_engine(f"{server}/{name}").dispose()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run(code: Path, database: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """A command on `code` (this tree or the previous release's), on `database`."""
    from tests.conftest import TEST_REDIS_URL

    env = {
        **os.environ, "PYTHONPATH": str(code), "TEND_ENV": "test", "DATABASE_URL": database,
        "REDIS_URL": TEST_REDIS_URL, "NARRATIVES_DIR": str(code / "narratives"),
        "TEND_INSTANCE_DIR": str(tmp_path / "instance"),
        "PUBLIC_BASE_URL": "https://tend.example.org",
        "QUIET_HOURS_START": "08:00", "QUIET_HOURS_END": "08:00",  # tests run at any hour
    }
    result = subprocess.run([sys.executable, *args], env=env, cwd=code, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def migrate(code: Path, database: str, tmp_path: Path) -> str:
    """`bot migrate`, as the release phase runs it; the line it ends with."""
    return run(code, database, tmp_path, "-m", "bot.tools.cli", "migrate").stdout.strip()


def previous_release(folder: Path, database: str, tmp_path: Path, step: str) -> dict:
    """This file's `__main__` part, on the previous release's code; what it reports."""
    report = json.loads(run(folder, database, tmp_path, __file__, step).stdout.splitlines()[-1])
    assert report["code"].startswith(str(folder))  # its own code, not this tree's
    return report


def schema(database: str) -> dict[str, Any]:
    from sqlalchemy import inspect, text

    from bot.store.db import get_engine

    engine = get_engine(database)
    inspector = inspect(engine)
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    return {"version": version, **{
        table: (
            [(c["name"], str(c["type"]), c["nullable"], c["default"])
             for c in inspector.get_columns(table)],
            sorted((i["name"], i["column_names"], i["unique"])
                   for i in inspector.get_indexes(table)),
        )
        for table in inspector.get_table_names()
    }}


def test_bot_migrate_run_again_changes_nothing_and_says_so(database, tmp_path):
    head = newest_migration().revision
    assert migrate(ROOT, database, tmp_path) == (
        f"database is up to date at revision {head} (was empty)")
    built = schema(database)
    assert migrate(ROOT, database, tmp_path) == (
        f"database is up to date at revision {head}: nothing to apply")
    assert schema(database) == built


def test_the_previous_release_keeps_working_while_and_after_the_release_phase_migrates(
    previous, database, tmp_path, redis_conn
):
    newest = newest_migration()
    # The database as the previous release left it: its own migrations, then its data.
    assert migrate(previous, database, tmp_path).startswith("database is up to date")
    assert schema(database)["version"] == [(newest.down_revision,)]  # the last migration, then
    previous_release(previous, database, tmp_path, "before")
    # The new release's release phase, while the previous release's dynos still run.
    assert migrate(ROOT, database, tmp_path) == (
        f"database is up to date at revision {newest.revision} (was {newest.down_revision})")
    report = previous_release(previous, database, tmp_path, "after")
    assert report["problems"] == []  # every table and column it declares, as it declares it
    assert report["dispatched"] == 2  # Ana's welcome, from before the migration, and Ben's
    assert report["sent"] == 2 and report["recorded"] == ["accepted", "accepted"]
    assert report["callbacks"] == [204, 204] and report["delivered"] == ["delivered"] * 2
    assert report["help"][0] == 200 and report["help"][1]  # answered, with a reply
    assert report["stop"][0] == 200 and report["opted_out"] is True


def test_the_check_names_what_a_migration_that_contracts_too_early_would_break(
    previous, database, tmp_path
):
    from sqlalchemy import text

    from bot.store.db import get_engine

    migrate(ROOT, database, tmp_path)
    with get_engine(database).begin() as connection:
        connection.execute(text("ALTER TABLE delivery DROP COLUMN event_key"))
        connection.execute(text("ALTER TABLE participant ADD COLUMN cohort varchar(8) NOT NULL"))
        connection.execute(text("ALTER TABLE answer ALTER COLUMN delivery_id DROP NOT NULL"))
        connection.execute(text("ALTER TABLE alert ALTER COLUMN detail TYPE varchar(4)"))
    problems = previous_release(previous, database, tmp_path, "check")["problems"]
    # A column made optional breaks nothing; the other three would.
    assert sorted(problem.split(":")[0] for problem in problems) == [
        "alert.detail", "delivery.event_key", "participant.cohort"], problems
    assert "participant.cohort: new, NOT NULL and without a default: its inserts fail" in problems


# --- The previous release's side: run as a script, on its own code ------------------------


def _shape(kind: Any) -> tuple[str, float, object]:
    """A column type as the code sees it: its generic kind (FLOAT and DOUBLE PRECISION alike,
    as Alembic compares them), the most it holds (length, or bytes of an integer) and, for a
    time, its zone."""
    from sqlalchemy import BigInteger, Integer, SmallInteger

    if isinstance(kind, Integer):
        size = 2 if isinstance(kind, SmallInteger) else 8 if isinstance(kind, BigInteger) else 4
    else:
        size = getattr(kind, "length", None) or float("inf")
    return kind._type_affinity.__name__, float(size), getattr(kind, "timezone", None)


def schema_problems(engine: Any) -> list[str]:
    """What this code's tables declare that the database no longer has, or has otherwise:
    a table or column gone, a type changed or narrowed, a column it may leave empty now NOT
    NULL, or a new NOT NULL column without a default, which its inserts would not fill."""
    from sqlalchemy import inspect
    from sqlmodel import SQLModel

    from bot.store import models  # noqa: F401  (registers the tables)

    inspector = inspect(engine)
    problems: list[str] = []
    for table in SQLModel.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            problems.append(f"{table.name}: the table is gone")
            continue
        there = {column["name"]: column for column in inspector.get_columns(table.name)}
        for column in table.columns:
            where, found = f"{table.name}.{column.name}", there.pop(column.name, None)
            if found is None:
                problems.append(f"{where}: the column is gone")
                continue
            wanted, actual = _shape(column.type), _shape(found["type"])
            if (wanted[0], wanted[2]) != (actual[0], actual[2]) or actual[1] < wanted[1]:
                problems.append(f"{where}: {column.type} is now {found['type']}")
            if column.nullable and not found["nullable"]:
                problems.append(f"{where}: may be left empty, but is now NOT NULL")
        problems += [
            f"{table.name}.{name}: new, NOT NULL and without a default: its inserts fail"
            for name, found in there.items()
            if not found["nullable"] and found["default"] is None
        ]
    return problems


class _Provider:
    """The provider, recording: accepts every message with a sid of its own."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, *, to: str, body: str, status_callback: str) -> SimpleNamespace:
        self.sent.append(f"SM{len(self.sent) + 1:032x}")
        return SimpleNamespace(sid=self.sent[-1])


def _post(client: Any, settings: Any, path: str, params: dict[str, str]) -> Any:
    from twilio.request_validator import RequestValidator

    signature = RequestValidator(settings.twilio_auth_token).compute_signature(
        settings.public_base_url + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def _text(client: Any, settings: Any, phone: str, body: str, n: int) -> list[Any]:
    import xml.etree.ElementTree as ElementTree

    sid = f"SM{9000 + n:032x}"
    response = _post(client, settings, "/twilio/sms", {
        "MessageSid": sid, "SmsSid": sid, "AccountSid": settings.twilio_account_sid,
        "From": phone, "To": settings.twilio_from_number, "Body": body, "NumMedia": "0",
        "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01",
    })
    replies = [m.text for m in ElementTree.fromstring(response.data).iter("Message")]
    return [response.status_code, replies]


def _after(settings: Any, engine: Any, programs: dict) -> dict[str, Any]:
    """The previous release's own operations, on the schema the new release migrated."""
    import redis
    from rq import Queue
    from sqlmodel import Session, select

    from bot import create_app
    from bot.delivery.sending import BatchSender
    from bot.participants.enrollment import enroll
    from bot.store.db import session_scope
    from bot.store.models import Delivery, Participant
    from worker import dispatcher

    with session_scope(engine) as session:
        enroll(session=session, phone=BEN, program=programs["daily-checkin"], timezone="UTC",
               via="cli")
    queue = Queue(settings.queue_name, connection=redis.Redis.from_url(settings.redis_url))
    dispatched = dispatcher.tick(engine=engine, queue=queue, settings=settings).due
    ids = [i for job in queue.get_jobs() for i in job.args[0]]
    provider = _Provider()
    outcome = BatchSender(engine=engine, settings=settings, sender=provider,  # type: ignore
                          limiter=None, programs=programs).send_batch(ids)
    with Session(engine) as session:
        recorded = [session.get(Delivery, i).status for i in ids]  # type: ignore[union-attr]
    client = create_app(settings).test_client()
    callbacks = [
        _post(client, settings, "/twilio/status", {
            "MessageSid": sid, "MessageStatus": "delivered",
            "AccountSid": settings.twilio_account_sid,
        }).status_code
        for sid in provider.sent
    ]
    help_reply, stop_reply = (_text(client, settings, BEN, "HELP", 1),
                              _text(client, settings, ANA, "STOP", 2))
    with Session(engine) as session:
        delivered = [session.get(Delivery, i).status for i in ids]  # type: ignore[union-attr]
        ana = session.exec(select(Participant).where(Participant.phone == ANA)).one()
        opted_out = ana.opted_out_at is not None
    return {"dispatched": dispatched, "sent": len(outcome.sent), "recorded": recorded,
            "callbacks": callbacks, "delivered": delivered, "help": help_reply,
            "stop": stop_reply, "opted_out": opted_out}


def _previous_release_main(step: str) -> None:
    import bot
    from bot.care.programs import load_programs
    from bot.settings import Settings
    from bot.store.db import get_engine, session_scope

    settings = Settings.from_env()
    engine = get_engine(settings.database_url)
    report: dict[str, Any] = {"code": bot.__file__}
    if step == "before":
        from bot.participants.enrollment import enroll

        with session_scope(engine) as session:
            enroll(session=session, phone=ANA, program=load_programs(settings.narratives_dir)[
                "daily-checkin"], timezone="UTC", via="cli")
    elif step in ("check", "after"):
        report["problems"] = schema_problems(engine)
        if step == "after":
            report.update(_after(settings, engine, load_programs(settings.narratives_dir)))
    print(json.dumps(report))


if __name__ == "__main__":
    _previous_release_main(sys.argv[1])
