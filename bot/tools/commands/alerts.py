"""`bot alerts` and `bot resume`: what coordinators must look at, and lifting a crisis pause."""

from __future__ import annotations

import click
from sqlmodel import col, select

from bot.participants.phones import PhoneNumberError, mask
from bot.store.db import get_engine, session_scope
from bot.store.models import Alert, Participant
from bot.tools.commands import load_settings


@click.command("alerts")
@click.option("--all", "show_all", is_flag=True, help="include resolved alerts")
@click.option("--resolve", "resolve_id", type=int, default=None, help="mark an alert resolved")
def alerts_command(show_all: bool, resolve_id: int | None) -> None:
    """List what coordinators must look at: crisis language, requests for a person."""
    from bot.clock import now

    settings = load_settings()
    engine = get_engine(settings.database_url)
    with session_scope(engine) as session:
        if resolve_id is not None:
            alert = session.get(Alert, resolve_id)
            if alert is None:
                raise click.ClickException(f"no alert {resolve_id}")
            alert.resolved_at = now()
            session.add(alert)
            click.echo(f"alert {resolve_id} resolved")
            return
        query = select(Alert, Participant).join(
            Participant, col(Participant.id) == col(Alert.participant_id), isouter=True
        )
        if not show_all:
            query = query.where(col(Alert.resolved_at).is_(None))
        rows = session.exec(query.order_by(col(Alert.created_at).desc())).all()
        if not rows:
            click.echo("no open alerts")
            return
        for alert, participant in rows:
            who = f"participant {participant.id} {mask(participant.phone)}" if participant else (
                "unknown number"
            )
            state = " (resolved)" if alert.resolved_at else ""
            paused = " [paused]" if participant and participant.paused_at else ""
            click.echo(
                f"#{alert.id} {alert.created_at:%Y-%m-%d %H:%M} UTC {alert.kind.upper()}{state} "
                f"{who}{paused}: {alert.detail}"
            )


@click.command("resume")
@click.argument("phone")
def resume_command(phone: str) -> None:
    """Lift a crisis pause once a coordinator has spoken with the participant."""
    from sqlmodel import update

    from bot.clock import now
    from bot.participants.consent import resume
    from bot.participants.enrollment import find_by_phone
    from bot.participants.phones import normalize

    settings = load_settings()
    engine = get_engine(settings.database_url)
    try:
        number = normalize(phone)
    except PhoneNumberError as exc:
        raise click.ClickException(str(exc)) from None
    with session_scope(engine) as session:
        participant = find_by_phone(session=session, phone=number)
        if participant is None:
            raise click.ClickException(f"{mask(number)} is not enrolled")
        from bot.care.programs import live_programs

        program = live_programs(settings.narratives_dir).get(participant.program)
        resume(session=session, participant=participant, program=program)
        # The coordinator has been in touch: the crisis alerts are settled with the pause.
        resolved = session.exec(
            update(Alert)
            .where(col(Alert.participant_id) == participant.id, col(Alert.kind) == "crisis",
                   col(Alert.resolved_at).is_(None))
            .values(resolved_at=now())
        ).rowcount
    click.echo(f"automated messages resumed for {mask(number)}")
    if resolved:
        click.echo(f"{resolved} open crisis alert{'s' if resolved != 1 else ''} resolved")
