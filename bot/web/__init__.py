"""What request handlers share: the settings, the engine, the programs."""

from __future__ import annotations

from flask import current_app
from sqlalchemy.engine import Engine

from bot.care.programs import Program, live_programs
from bot.settings import Settings


def settings() -> Settings:
    return current_app.config["TEND"]


def engine() -> Engine:
    return current_app.extensions["tend.engine"]


def programs() -> dict[str, Program]:
    return live_programs(settings().narratives_dir)
