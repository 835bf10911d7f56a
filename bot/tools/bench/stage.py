"""The benchmark's stage: its own database and Redis db, the processes it runs, what they cost.

Everything runs as real processes on this machine: the sandbox (the provider), `bot worker`,
`bot dispatcher`, gunicorn. The benchmark's database is dropped and recreated, so it refuses a
database whose name does not say "bench".
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import redis
from rq import Queue, Worker
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import SQLModel

from bot.settings import PROJECT_ROOT, SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, SANDBOX_FROM_NUMBER
from bot.store.db import create_tables, get_engine

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/tend_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/8"
QUEUE_NAME = "bench-deliveries"
CALLBACK_DELAY_SECONDS = 3600.0  # the provider's status callbacks wait past every measurement
NAIVE_QUEUE_NAME = "bench-naive"


class BenchError(RuntimeError):
    """The benchmark cannot run here (wrong database, a process that would not start)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")


def wait_workers(queue: Queue, count: int, children: list[Child]) -> None:
    """Wait until `count` RQ workers listen on `queue`; refuse if one of `children` exited."""

    def ready() -> bool:
        for child in children:
            if not child.alive():
                raise BenchError(f"{child.name} exited:\n{child.tail()}")
        return len(Worker.all(queue=queue)) >= count

    wait_until(ready, 60, f"{count} worker(s) on {queue.name}")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def bench_database(url: str) -> Engine:
    """An empty schema in the benchmark's own database, created if missing."""
    import psycopg

    parsed = make_url(url)
    name = parsed.database or ""
    if parsed.get_backend_name() != "postgresql":
        raise BenchError(f"the benchmark needs PostgreSQL, not {parsed.get_backend_name()}")
    if "bench" not in name:
        raise BenchError(
            f"refusing database {name!r}: the benchmark drops its tables, so its name must "
            f"contain 'bench' (set BENCH_DATABASE_URL)"
        )
    admin = parsed.set(drivername="postgresql", database="postgres")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if exists.fetchone() is None:
            connection.execute(f'CREATE DATABASE "{name}"')
    engine = get_engine(url)
    SQLModel.metadata.drop_all(engine)
    create_tables(engine)
    return engine


def empty_tables(engine: Engine) -> None:
    """Remove every row the benchmark made (the tables stay, empty, for the next run)."""
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def bench_redis(url: str, *, explicit: bool) -> redis.Redis:
    """The benchmark's Redis db, flushed. The default db is held the way test runs hold theirs
    (tests/conftest.py), so a test run never picks it while the benchmark flushes it."""
    connection = redis.Redis.from_url(url)
    db = int(connection.connection_pool.connection_kwargs.get("db", 0))
    if db == 0:
        raise BenchError("refusing Redis db 0: the benchmark flushes its db; give it its own")
    if not explicit:
        base = _db0(url)
        key = f"tend:test-run:{db}"
        mine = _holder(os.getpid())
        if not base.set(key, mine, nx=True, ex=HOLD_SECONDS):
            held = base.get(key)
            if not (_stale(held) and base.eval(_TAKE_OVER, 1, key, held, mine, HOLD_SECONDS)):
                raise BenchError(
                    f"Redis db {db} is held by {held!r} (a test run?); "
                    f"set BENCH_REDIS_URL to another db"
                )
    connection.flushdb()
    return connection


HOLD_SECONDS = 3600  # a hold left by a run that was killed lapses after this
# Replace a hold only if it is still the one found stale (two runs may find it at once).
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return false
"""


def _holder(pid: int) -> str:
    return f"bench {pid} on {socket.gethostname()}"


def _stale(held: bytes | None) -> bool:
    """Whether a hold is a benchmark's on this machine whose process is gone (it was killed
    before it could let go); a test run's hold, or another machine's, is never taken over."""
    words = (held or b"").decode(errors="replace").split(" ", 3)
    if len(words) != 4 or words[0] != "bench" or words[2] != "on" or not words[1].isdigit():
        return False
    return words[3] == socket.gethostname() and not psutil.pid_exists(int(words[1]))


def release_redis(url: str, connection: redis.Redis, *, explicit: bool) -> None:
    connection.flushdb()
    if not explicit:
        db = connection.connection_pool.connection_kwargs.get("db", 0)
        _db0(url).delete(f"tend:test-run:{db}")


def _db0(url: str) -> redis.Redis:
    """Database 0 of the same server, where test runs mark the dbs they hold."""
    return redis.Redis.from_url(urlunsplit(urlsplit(url)._replace(path="/0", query="")))


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def peak_rss_mb(self) -> float:
        """The process's resident-set high-water mark (VmHWM), in MiB."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        raise BenchError(f"no VmHWM for {self.name}")

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stage:
    """The URLs, environment and child processes of one benchmark run."""

    database_url: str
    redis_url: str
    sandbox_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tend-bench-")))
    children: list[Child] = field(default_factory=list)

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def postgres(self) -> str:
        """The CPU group of the benchmark's database (see `cpu_seconds`)."""
        return f"postgres:{make_url(self.database_url).database}"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment every child runs with: bench database and Redis, sandbox provider."""
        env = dict(os.environ)
        env.update(
            TEND_ENV="development",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            TWILIO_API_BASE_URL=self.sandbox_url,
            TWILIO_ACCOUNT_SID=SANDBOX_ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=SANDBOX_AUTH_TOKEN,
            TWILIO_FROM_NUMBER=SANDBOX_FROM_NUMBER,
            PUBLIC_BASE_URL=self.web_url,
            NARRATIVES_DIR=str(PROJECT_ROOT / "narratives"),
            QUEUE_NAME=QUEUE_NAME,
            # The benchmark must run at any hour: no quiet window (start == end means none).
            QUIET_HOURS_START="08:00",
            QUIET_HOURS_END="08:00",
            # Measure the pipeline, not the configured carrier limit (default 1/s).
            SEND_RATE_PER_SECOND="1000000",
            DISPATCH_INTERVAL_SECONDS="0.2",
            PYTHONUNBUFFERED="1",
        )
        env.pop("TWILIO_MESSAGING_SERVICE_SID", None)
        env.update(extra)
        return env

    def start(self, name: str, argv: list[str], **extra_env: str) -> Child:
        log = self.logs / f"{name}.log"
        handle = log.open("wb")
        process = subprocess.Popen(
            argv, env=self.env(**extra_env), stdout=handle, stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
        handle.close()
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def start_sandbox(self, callback_delay: float = CALLBACK_DELAY_SECONDS) -> Child:
        """The provider: the sandbox app under gunicorn, one process of threads that keeps
        connections alive as Twilio's API does (the werkzeug server closes each one). Status
        callbacks are held back an hour, so the send measurements time the API alone."""
        env = self.env()
        app = (
            "bot.sandbox:create_sandbox_app("
            f"account_sid={env['TWILIO_ACCOUNT_SID']!r}, auth_token={env['TWILIO_AUTH_TOKEN']!r}, "
            f"bot_inbound_url={self.web_url + '/twilio/sms'!r}, "
            f"bot_number={env['TWILIO_FROM_NUMBER']!r}, public_url={self.sandbox_url!r}, "
            f"callback_delay={callback_delay})"
        )
        child = self.start(
            "sandbox",
            [
                sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.sandbox_port}",
                "--workers", "1", "--worker-class", "gthread", "--threads", "16",
                "--keep-alive", "75", "--timeout", "60", app,
            ],
        )
        self.wait_port(child, self.sandbox_port)
        return child

    def start_bot(self, name: str, command: str) -> Child:
        return self.start(name, [sys.executable, "-m", "bot.tools.cli", command])

    def start_web(self, workers: int = 2, threads: int = 4, port: int | None = None,
                  name: str = "web") -> Child:
        port = port or self.web_port
        child = self.start(
            name,
            [
                sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                "--workers", str(workers), "--threads", str(threads), "--timeout", "15",
                "bot:create_app()",
            ],
            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        )
        self.wait_port(child, port)
        return child

    def wait_port(self, child: Child, port: int, timeout: float = 30) -> None:
        def ready() -> bool:
            if not child.alive():
                raise BenchError(f"{child.name} exited:\n{child.tail()}")
            return port_open(port)

        wait_until(ready, timeout, f"{child.name} on port {port}")

    def stop(self, *children: Child) -> None:
        for child in children:
            child.stop()
            if child in self.children:
                self.children.remove(child)

    def stop_all(self) -> None:
        self.stop(*list(reversed(self.children)))


# --- where the CPU goes ------------------------------------------------------------------------


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _service(name: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name"]):
        if (process.info["name"] or "").startswith(name):
            found.append(process)
    return found


def _postgres(database: str) -> list[psutil.Process]:
    """The server's own processes (checkpointer, WAL writer, ...) and the backends serving
    `database`; not the backends of other databases on a shared server."""
    found = []
    for process in _service("postgres"):
        try:
            command = f" {' '.join(process.cmdline())} "
        except psutil.Error:
            continue
        # A backend: "postgres: 15/main: USER DATABASE HOST(PORT) STATE" (or [local]); an
        # autovacuum worker: "postgres: 15/main: autovacuum worker DATABASE".
        serves_one = "(" in command or "[local]" in command or "autovacuum worker" in command
        if not serves_one or f" {database} " in command:
            found.append(process)
    return found


def cpu_seconds(groups: dict[str, Iterable[int] | str]) -> dict[str, dict[int, float]]:
    """CPU seconds (user + system) of each process in each group, by pid.

    A group is a list of child pids (with their descendants), a service's process name
    (e.g. "redis-server"), "postgres:DATABASE" (the server's own processes and the backends of
    that database, so the database's share is counted too), or "self" (this process alone,
    without its children).
    """
    result: dict[str, dict[int, float]] = {}
    for group, members in groups.items():
        if members == "self":
            processes = [psutil.Process()]
        elif isinstance(members, str) and members.startswith("postgres:"):
            processes = _postgres(members.partition(":")[2])
        elif isinstance(members, str):
            processes = _service(members)
        else:
            processes = [p for pid in members for p in _tree(pid)]
        seen: dict[int, float] = {}
        for process in processes:
            try:
                times = process.cpu_times()
                seen[process.pid] = times.user + times.system
            except psutil.Error:
                continue
        result[group] = seen
    return result


def cpu_spent(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[
    str, float
]:
    """CPU seconds each group used between two snapshots (new processes count from zero)."""
    return {
        group: sum(t - before.get(group, {}).get(pid, 0.0) for pid, t in pids.items())
        for group, pids in after.items()
    }
