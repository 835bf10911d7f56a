"""`bot run`: web, worker, dispatcher and sandbox as child processes on embedded defaults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click

from bot.delivery.queues import connect_redis, embedded_redis_url
from bot.settings import Settings
from bot.store.migrate import upgrade


def run_all(settings: Settings, *, port: int, sandbox_port: int) -> None:
    """Start every process, stream their output, stop them all on Ctrl-C or if one dies."""
    env = dict(os.environ)
    redis_holder = None
    if settings.uses_embedded_redis:
        # One embedded server for all processes: children reach it through its socket.
        redis_holder = connect_redis(settings)
        env["REDIS_URL"] = embedded_redis_url(redis_holder)
    if "PUBLIC_BASE_URL" not in env:
        env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    if "TWILIO_API_BASE_URL" not in env:
        env["TWILIO_API_BASE_URL"] = f"http://127.0.0.1:{sandbox_port}"
    upgrade(settings)
    bot = [sys.executable, "-m", "bot.tools.cli"]
    commands = {
        "web": [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers",
                "2", "--threads", "4", "--access-logfile", "-", "bot:create_app()"],
        "worker": [*bot, "worker"],
        "dispatcher": [*bot, "dispatcher"],
        "sandbox": [*bot, "sandbox", "--port", str(sandbox_port)],
    }
    children = {name: subprocess.Popen(argv, env=env) for name, argv in commands.items()}
    click.echo(
        f"\n  Tend is running. Text the bot from the phone page: "
        f"http://127.0.0.1:{sandbox_port}/phone\n"
        f"  (text JOIN to start; Ctrl-C stops everything)\n"
    )
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    click.echo(f"{name} exited with {child.returncode}; stopping", err=True)
                    stopping = True
            time.sleep(0.5)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        for child in children.values():
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if redis_holder is not None:
            redis_holder.shutdown()
