"""The `bot` command: run the service, enroll participants, read alerts, check content.

The commands that start processes live here, the only part of the CLI that imports the
worker; the others live in `bot.tools.commands`, one module per concern.
"""

from __future__ import annotations

import sys

import click

from bot.tools.commands import load_settings, local_settings
from bot.tools.commands.alerts import alerts_command, resume_command
from bot.tools.commands.content import check_command, simulate_command
from bot.tools.commands.enrollment import enroll_command, import_command
from bot.tools.commands.export import export_group
from bot.tools.commands.staff import staff_group

BENCH_SECTIONS = ("delivery", "dispatch", "inbound", "hub", "simulation", "scale")


@click.group()
def main() -> None:
    """Tend: an SMS hub for digital micro-intervention care."""
    from bot import logs

    # The processes log to stdout, as hosts expect; the other commands to stderr, so that what
    # they print (an export, the bench's figures) stays theirs alone.
    process = click.get_current_context().invoked_subcommand in ("worker", "dispatcher", "sandbox")
    logs.configure(stream=sys.stdout if process else sys.stderr)


for _command in (enroll_command, import_command, alerts_command, resume_command,
                 check_command, export_group, simulate_command, staff_group):
    main.add_command(_command)


def _revision(database_url: str) -> str | None:
    """The schema's Alembic revision; None for an empty database or one not there yet."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.exc import OperationalError

    from bot.store.db import get_engine

    try:
        with get_engine(database_url).connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError:  # a SQLite file whose folder is still to be made
        return None


@main.command()
def migrate() -> None:
    """Bring the database schema up to date (Alembic); run again, it changes nothing."""
    from bot.store.migrate import upgrade

    settings = load_settings()
    before = _revision(settings.database_url)
    upgrade(settings)
    after = _revision(settings.database_url)
    if before == after:
        click.echo(f"database is up to date at revision {after}: nothing to apply")
    else:
        click.echo(f"database is up to date at revision {after} (was {before or 'empty'})")


@main.command("worker")
@click.option("--burst", is_flag=True, help="stop when the queue is empty")
def worker_command(burst: bool) -> None:
    """Run a worker: send deliveries from the queue; on SIGTERM, stop between two sends."""
    from bot.delivery.queues import delivery_queue
    from worker import context

    ctx = context.use(load_settings())
    queue = delivery_queue(ctx.settings, ctx.redis)
    context.GracefulWorker([queue], connection=ctx.redis).work(burst=burst, with_scheduler=False)


@main.command("dispatcher")
@click.option("--once", is_flag=True, help="one tick, then exit")
def dispatcher_command(once: bool) -> None:
    """Run the dispatcher: move due deliveries from SQL to the queue."""
    from bot.delivery.queues import delivery_queue
    from worker import context, dispatcher

    ctx = context.use(load_settings())
    dispatcher.run(
        engine=ctx.engine,
        queue=delivery_queue(ctx.settings, ctx.redis),
        settings=ctx.settings,
        once=once,
    )


@main.command("sandbox")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5001, type=int)
def sandbox_command(host: str, port: int) -> None:
    """Run the local Twilio-compatible sandbox and its phone page."""
    from bot.sandbox import serve_sandbox

    settings = local_settings("sandbox")
    serve_sandbox(
        host,
        port,
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        bot_inbound_url=f"{settings.public_base_url}/twilio/sms",
        bot_number=settings.twilio_from_number,
    )


@main.command("run")
@click.option("--port", default=5000, type=int, help="web port")
@click.option("--sandbox-port", default=5001, type=int, help="sandbox (phone page) port")
def run_command(port: int, sandbox_port: int) -> None:
    """Run everything locally: web, worker, dispatcher and the sandbox, on embedded defaults."""
    from bot.tools.local import run_all

    run_all(local_settings("run"), port=port, sandbox_port=sandbox_port)


def _bench_sections(
    _context: click.Context, _option: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """`--only delivery --only hub` or `--only delivery,hub`: the sections named, in order."""
    sections: list[str] = []
    for value in values:
        for name in (part.strip().lower() for part in value.split(",")):
            if not name:
                continue
            if name not in BENCH_SECTIONS:
                raise click.BadParameter(
                    f"{name!r} is not a section; choose from {', '.join(BENCH_SECTIONS)}"
                )
            if name not in sections:
                sections.append(name)
    return tuple(sections)


@main.command("bench")
@click.option("--quick", is_flag=True, help="tiny sizes, for a smoke run")
@click.option("--only", multiple=True, metavar="SECTION", callback=_bench_sections,
              help="run only this section: delivery, dispatch, inbound, hub or simulation "
                   "(repeat, or separate with commas)")
@click.option("--participants", type=click.IntRange(min=1), default=None, metavar="N",
              help="participants to simulate")
@click.option("--days", type=click.IntRange(min=1), default=None, metavar="N",
              help="days to simulate")
def bench_command(
    quick: bool, only: tuple[str, ...], participants: int | None, days: int | None
) -> None:
    """Measure delivery and webhook throughput; the last line is one JSON object."""
    from bot.tools.bench import run_benchmark

    run_benchmark(quick=quick, only=only or None, participants=participants, days=days)


if __name__ == "__main__":
    main()
