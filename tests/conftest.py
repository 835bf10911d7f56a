"""Fixtures: real PostgreSQL and Redis (flushed per test), the real twilio library over HTTP.

TEST_DATABASE_URL and TEST_REDIS_URL override the local servers' defaults.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel
from twilio.request_validator import RequestValidator
from werkzeug.serving import BaseWSGIServer, make_server

from bot import create_app
from bot.settings import Settings
from bot.store.db import create_tables, get_engine

SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ROOT = Path(__file__).resolve().parent.parent


def _private_database() -> str:
    """A database of this run's own on the local server, so test runs never share tables."""
    import psycopg

    name = f"tend_test_{os.getpid()}"
    with psycopg.connect(SERVER_URL.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.execute(f"CREATE DATABASE {name}")
    return SERVER_URL.rsplit("/", 1)[0] + "/" + name


def _private_redis_db() -> str:
    """A Redis database index no other test run holds (the tests flush it)."""
    base = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    for index in range(1, 16):
        if base.set(f"tend:test-run:{index}", os.getpid(), nx=True, ex=3600):
            return f"redis://127.0.0.1:6379/{index}"
    raise RuntimeError("every Redis database is held by another test run")


TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or _private_database()
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or _private_redis_db()


@pytest.fixture(scope="session", autouse=True)
def _release_private_servers() -> Iterator[None]:
    yield
    get_engine(TEST_DATABASE_URL).dispose()
    if "TEST_DATABASE_URL" not in os.environ:
        import psycopg

        name = TEST_DATABASE_URL.rsplit("/", 1)[1]
        with psycopg.connect(SERVER_URL.replace("+psycopg", ""), autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    if "TEST_REDIS_URL" not in os.environ:
        index = TEST_REDIS_URL.rsplit("/", 1)[1]
        base = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        redis.Redis.from_url(TEST_REDIS_URL).flushdb()
        base.delete(f"tend:test-run:{index}")


@pytest.fixture(scope="session")
def pg_engine() -> Engine:
    engine = get_engine(TEST_DATABASE_URL)
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    create_tables(engine)
    return engine


def _emptied(engine: Engine) -> None:
    """Every table empty and every id sequence back at 1, as TRUNCATE ... RESTART IDENTITY of
    all tables leaves them; only the tables the last test wrote to are truncated (a TRUNCATE
    costs a few milliseconds per table, most tests touch a handful)."""
    names = [table.name for table in SQLModel.metadata.sorted_tables]
    written = " UNION ALL ".join(
        f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in names
    )
    with engine.begin() as connection:
        used = [row[0] for row in connection.exec_driver_sql(written)]
        if used:
            connection.exec_driver_sql(f"TRUNCATE {', '.join(used)} RESTART IDENTITY CASCADE")
        connection.exec_driver_sql(
            "SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S'"
        )


@pytest.fixture
def engine(pg_engine: Engine) -> Iterator[Engine]:
    _emptied(pg_engine)
    yield pg_engine


@pytest.fixture(params=["postgresql", "sqlite"])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The test PostgreSQL database, or a fresh SQLite file (the zero-setup database)."""
    if request.param == "postgresql":
        yield request.getfixturevalue("engine")
        return
    engine = get_engine(f"sqlite:///{tmp_path / 'tend.sqlite3'}")
    create_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def redis_conn() -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(TEST_REDIS_URL)
    connection.flushdb()
    yield connection
    connection.flushdb()


@pytest.fixture
def settings(engine: Engine, tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        testing=True,
        database_url=TEST_DATABASE_URL,
        redis_url=TEST_REDIS_URL,
        instance_dir=tmp_path / "instance",
        narratives_dir=ROOT / "narratives",
        public_base_url="https://tend.example.org",
        send_rate_per_second=1000.0,
    ).validated()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements `engine` runs inside the block, in order."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def sign(settings: Settings, path: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature Twilio would send for `params` posted to `path`."""
    validator = RequestValidator(settings.twilio_auth_token)
    return validator.compute_signature(settings.public_base_url + path, params)


@pytest.fixture
def twilio_post(client: FlaskClient, settings: Settings) -> Callable[..., Any]:
    """POST form `params` to `path` signed as Twilio signs it."""

    def post(path: str, params: dict[str, str], signature: str | None = None) -> Any:
        return client.post(
            path,
            data=params,
            headers={"X-Twilio-Signature": signature or sign(settings, path, params)},
        )

    return post


class Counter:
    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()

    def next(self) -> int:
        with self.lock:
            self.value += 1
            return self.value


_sids = Counter()


def inbound_params(phone: str, body: str, sid: str | None = None) -> dict[str, str]:
    """Twilio's inbound parameter set for a text from `phone`."""
    sid = sid or f"SM{_sids.next():032x}"
    return {
        "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0",
        "ToCity": "", "FromZip": "", "SmsSid": sid, "FromState": "CA", "SmsStatus": "received",
        "FromCity": "", "Body": body, "FromCountry": "US", "To": "+15005550006", "ToZip": "",
        "NumSegments": "1", "MessageSid": sid, "AccountSid": "AC" + "0" * 32, "From": phone,
        "ApiVersion": "2010-04-01",
    }


@pytest.fixture
def text_bot(twilio_post: Callable[..., Any]) -> Callable[..., Any]:
    """Text the bot as `phone`; returns the response (TwiML replies in .replies)."""
    import xml.etree.ElementTree as ElementTree

    def send(phone: str, body: str, sid: str | None = None) -> Any:
        response = twilio_post("/twilio/sms", inbound_params(phone, body, sid))
        response.replies = []
        if response.status_code == 200:
            root = ElementTree.fromstring(response.data)
            response.replies = [m.text or "" for m in root.iter("Message")]
        return response

    return send


class LiveServer:
    def __init__(self, app: Any, host: str = "127.0.0.1"):
        self.server: BaseWSGIServer = make_server(host, 0, app, threaded=True)
        self.url = f"http://{host}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def live_server() -> Iterator[Callable[[Any], LiveServer]]:
    """Serve a WSGI app over real HTTP on a free port."""
    servers: list[LiveServer] = []

    def start(app: Any) -> LiveServer:
        server = LiveServer(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class Stack:
    """The bot and the sandbox, each on real HTTP, wired to each other; a worker in-process."""

    def __init__(
        self, settings: Settings, bot: LiveServer, sandbox: LiveServer, sandbox_app: Any
    ) -> None:
        self.settings, self.bot, self.sandbox = settings, bot, sandbox
        self.sandbox_app = sandbox_app

    @property
    def store(self) -> Any:
        from bot.sandbox import sandbox_of

        return sandbox_of(self.sandbox_app).store

    def outbound_to(self, phone: str) -> list[Any]:
        return [m for m in self.store.conversation(phone) if m.direction.startswith("outbound")]

    def faults(self, faults: list[dict[str, Any]], to: str | None = None) -> None:
        import requests

        payload: dict[str, Any] = {"faults": faults}
        if to:
            payload["to"] = to
        requests.post(f"{self.sandbox.url}/sandbox/faults", json=payload, timeout=5)

    def text(self, phone: str, body: str) -> Any:
        import requests

        return requests.post(
            f"{self.sandbox.url}/sandbox/api/inbound",
            json={"from": phone, "body": body},
            timeout=20,
        )


def _placeholder(environ: Any, start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


@pytest.fixture
def stack(settings: Settings, redis_conn: redis.Redis) -> Iterator[Stack]:
    """Bot web app and sandbox on free ports; the worker context points at both."""
    from bot.sandbox import create_sandbox_app, sandbox_of
    from worker import context

    bot_server = LiveServer(_placeholder)
    sandbox_server = LiveServer(_placeholder)
    wired = settings.with_overrides(
        public_base_url=bot_server.url,
        twilio_api_base_url=sandbox_server.url,
        quiet_hours_start=settings.quiet_hours_end,  # no quiet hours: tests run at any hour
    )
    bot_server.server.app = create_app(wired)
    sandbox_app = create_sandbox_app(
        account_sid=wired.twilio_account_sid,
        auth_token=wired.twilio_auth_token,
        bot_inbound_url=f"{bot_server.url}/twilio/sms",
        bot_number=wired.twilio_from_number,
        public_url=sandbox_server.url,
        callback_delay=0.01,
    )
    sandbox_server.server.app = sandbox_app
    context.use(wired)
    yield Stack(wired, bot_server, sandbox_server, sandbox_app)
    bot_server.stop()
    sandbox_server.stop()
    sandbox_of(sandbox_app).close()


def wait_for(
    predicate: Callable[[], bool], timeout: float = 8.0, *, sweeping: Engine | None = None
) -> bool:
    """Poll until `predicate` holds (status callbacks arrive over real HTTP, in their own time).

    With `sweeping`, each poll first does what the dispatcher's tick does every second in
    production: apply status callbacks that arrived before the worker recorded their sid.
    """
    import time

    from bot.delivery.status import apply_unmatched
    from bot.store.db import session_scope

    def holds() -> bool:
        if sweeping is not None:
            with session_scope(sweeping) as session:
                apply_unmatched(session=session, older_than_seconds=0)
        return predicate()

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if holds():
            return True
        time.sleep(0.02)
    return holds()


# --- a real browser: Debian's Chromium, headless, driven by Playwright -------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for a test module (CI installs Debian's package; without it a
    local run skips the browser tests and CI fails them)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing; CI must install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()
