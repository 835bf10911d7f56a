"""What request handlers share: the settings, the engine, the programs."""

from __future__ import annotations

import time
from pathlib import Path

from flask import current_app
from sqlalchemy.engine import Engine

from bot.care.programs import Catalog, live_programs
from bot.settings import Settings

# How long a web process serves the programs it read before it looks at the files again.
# Looking means a stat of every file of every program, which costs more than the rest of an
# inbound text; a coordinator's edit is served a second later at most.
PROGRAMS_FRESH_SECONDS = 1.0


def settings() -> Settings:
    return current_app.config["TEND"]


def engine() -> Engine:
    return current_app.extensions["tend.engine"]


def programs() -> Catalog:
    """The live programs (`live_programs`: never raises), read again once they are a second old."""
    folder = settings().narratives_dir
    held: tuple[Path, float, Catalog] | None = current_app.extensions.get("tend.programs")
    moment = time.monotonic()
    if held is None or held[0] != folder or abs(moment - held[1]) >= PROGRAMS_FRESH_SECONDS:
        held = (folder, moment, live_programs(folder))
        current_app.extensions["tend.programs"] = held
    return held[2]
