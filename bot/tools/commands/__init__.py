"""The `bot` subcommands, one module per concern, and what they share: settings read once,
programs loaded, and errors that say what to type instead."""

from __future__ import annotations

import click

from bot.care.programs import Program, ProgramError, load_programs
from bot.settings import Settings, SettingsError, environment


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def local_settings(command: str) -> Settings:
    """Settings for a command that stands in for Twilio: refused with TEND_ENV=production."""
    try:
        production = environment() == "production"
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if production:
        raise click.ClickException(
            f"bot {command} is for local use and does not run with TEND_ENV=production: its "
            f"sandbox lets anyone text the bot and read every conversation"
        )
    return load_settings()


def _programs(settings: Settings) -> dict[str, Program]:
    try:
        return load_programs(settings.narratives_dir)
    except ProgramError as exc:
        raise click.ClickException("the programs have problems:\n" + str(exc)) from None


def find_program(settings: Settings, name: str) -> Program:
    programs = _programs(settings)
    if name not in programs:
        known = ", ".join(sorted(programs)) or "none"
        raise click.ClickException(f"no program named {name!r} (programs: {known})")
    return programs[name]
