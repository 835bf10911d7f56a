"""`bot staff`: the console's accounts, made and removed from the command line.

A password is read from standard input when it is not a terminal, so accounts can be scripted
(`printf '%s\\n' "$PASSWORD" | bot staff add ...`); at a terminal it is asked for twice.
"""

from __future__ import annotations

import sys

import click

from bot.people import audit, staff
from bot.store.db import get_engine, session_scope
from bot.store.support import ROLES
from bot.tools.commands import load_settings

ACTOR = "cli"


def _read_password() -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise click.ClickException("no password on standard input")
        return line.rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group("staff")
def staff_group() -> None:
    """Console accounts: add, list, remove, set a password."""


@staff_group.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES),
              help="admin, coordinator, coach or analyst")
@click.option("--name", default="", help="the name the console shows")
def add_command(email: str, role: str, name: str) -> None:
    """Give EMAIL an account with ROLE (the password is read from standard input or asked)."""
    engine = get_engine(load_settings().database_url)
    try:
        email = staff.normalize_email(email)
        staff.check_password(password := _read_password())
        with session_scope(engine) as session:
            existing = staff.find(session=session, email=email)
            restored = existing is not None and existing.removed_at is not None
            person = staff.add(session=session, email=email, role=role, password=password,
                               name=name)
            audit.record(session, staff=None, actor=ACTOR, action="add-staff",
                         detail=f"{person.email} as {role}" + (" (restored)" if restored else ""))
    except staff.StaffError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{'restored' if restored else 'added'} {person.email} as {role}; "
               f"they sign in at /console/login")


@staff_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="include removed accounts")
def list_command(show_all: bool) -> None:
    """Every account: email, role, second factor, last sign-in, and whether it is locked."""
    engine = get_engine(load_settings().database_url)
    with session_scope(engine) as session:
        people = staff.list_staff(session=session, include_removed=show_all)
    if not people:
        click.echo("no staff accounts yet; add one with: bot staff add EMAIL --role admin")
        return
    width = max(len(p.email) for p in people)
    for person in people:
        state = ("removed" if person.removed_at else
                 "locked" if staff.locked_until(person) else "active")
        seen = f"{person.last_login_at:%Y-%m-%d %H:%M} UTC" if person.last_login_at else "never"
        click.echo(f"{person.email:<{width}}  {person.role:<11}  "
                   f"{'2-step' if person.totp_secret else 'password':<8}  {state:<7}  "
                   f"last sign-in {seen}")


@staff_group.command("remove")
@click.argument("email")
def remove_command(email: str) -> None:
    """EMAIL can no longer sign in (the account stays in the audit log)."""
    engine = get_engine(load_settings().database_url)
    try:
        with session_scope(engine) as session:
            person = staff.find(session=session, email=email)
            if person is None:
                raise staff.StaffError(f"no account for {email.strip().lower()}")
            staff.remove(session=session, staff=person)
            audit.record(session, staff=None, actor=ACTOR, action="remove-staff",
                         detail=person.email)
    except staff.StaffError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"removed {person.email}: they can no longer sign in")


@staff_group.command("password")
@click.argument("email")
@click.option("--reset-totp", is_flag=True, help="also turn off their second factor")
def password_command(email: str, reset_totp: bool) -> None:
    """Set a new password for EMAIL and lift any lockout (e.g. for a locked-out admin)."""
    engine = get_engine(load_settings().database_url)
    try:
        with session_scope(engine) as session:
            person = staff.find(session=session, email=email)
            if person is None or person.removed_at is not None:
                raise staff.StaffError(f"no active account for {email.strip().lower()}")
            staff.set_password(session=session, staff=person, password=_read_password())
            staff.reset_lockout(session=session, staff=person)
            if reset_totp:
                staff.disable_totp(session=session, staff=person)
            audit.record(session, staff=None, actor=ACTOR, action="reset-password",
                         detail=person.email + (" and second factor" if reset_totp else ""))
    except staff.StaffError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"new password set for {person.email}" +
               ("; second factor turned off" if reset_totp else ""))
