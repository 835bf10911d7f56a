"""What a simulation is asked to do, and what it reports back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time

from freezegun import api as freezegun_api

from bot.care.programs import Program
from bot.care.timing import zone
from bot.tools.personas import persona_names

ENROLL_AT = clock_time(9, 0)  # everyone is enrolled at 9:00 on the first day, in the first zone
FIRST_PHONE = 4155550000  # +1 415 555 0000 onwards: fictional numbers the sandbox accepts
MAX_PARTICIPANTS = 10_000
DEFAULT_START = date(2026, 3, 2)  # a Monday; a fixed default keeps runs reproducible
MAX_JUMP = timedelta(days=1)  # the clock never skips more than a day at once
# The clock moves at least this far between steps: a minute for a few people; for a
# population, ten, so each step sends a batch (replies take minutes to hours anyway).
RESOLUTION = timedelta(minutes=1)
POPULATION_RESOLUTION = timedelta(minutes=10)
POPULATION = 10  # more participants than this use the population resolution
QUIET_LOGGERS = ("bot", "worker", "rq", "werkzeug", "alembic")


class SimulationError(RuntimeError):
    """The simulation cannot run (a program or persona that does not exist, a used database)."""


def real_seconds() -> float:
    """Wall-clock seconds, unaffected by the virtual clock."""
    return freezegun_api.real_monotonic()


@dataclass(frozen=True)
class Plan:
    """What to simulate."""

    program: str
    persona: str = "engaged"  # a persona name, or "mix"
    days: int = 56
    participants: int = 1
    seed: int = 1
    start: date = DEFAULT_START
    timezones: tuple[str, ...] = ("America/New_York",)  # assigned to participants in turn

    @property
    def step(self) -> timedelta:
        """The least the clock moves between two steps."""
        return RESOLUTION if self.participants <= POPULATION else POPULATION_RESOLUTION

    def validated(self, programs: dict[str, Program]) -> Plan:
        """This plan, or SimulationError saying what is wrong with it."""
        if self.program not in programs:
            known = ", ".join(sorted(programs)) or "none"
            raise SimulationError(f"no program named {self.program!r} (programs: {known})")
        if not 1 <= self.participants <= MAX_PARTICIPANTS:
            raise SimulationError(f"participants must be 1 to {MAX_PARTICIPANTS:,}")
        if self.days < 1:
            raise SimulationError("days must be at least 1")
        if not self.timezones:
            raise SimulationError("give at least one time zone")
        try:
            persona_names(self.persona, 1)
            for name in self.timezones:
                zone(name)
        except ValueError as exc:
            raise SimulationError(str(exc)) from None
        return self


@dataclass(frozen=True)
class Simulated:
    """One simulated participant."""

    id: int
    phone: str
    persona: str
    timezone: str


@dataclass
class Outcome:
    """What a finished simulation did; the database holds the rest."""

    plan: Plan
    participants: list[Simulated]
    started: datetime  # virtual
    ended: datetime  # virtual
    wall_seconds: float
    steps: int
    texts: int  # texts the personas sent
    errors: list[str] = field(default_factory=list)
    mode: str = "in-process"  # or "full": over HTTP and RQ
    # In process: wall seconds and SQL statements each part of the bot's work took.
    parts: dict[str, Part] = field(default_factory=dict)


@dataclass
class Part:
    """One part of the bot's work in a simulation: how long it took, how many SQL statements
    it ran (on PostgreSQL the send gate's own, one per send, goes straight to the driver and is
    not among them; on SQLite it is), and how often it ran."""

    seconds: float = 0.0
    statements: int = 0
    calls: int = 0


def phone_number(index: int) -> str:
    """The simulated participant number `index` (0-based), E.164."""
    return f"+1{FIRST_PHONE + index}"


@contextmanager
def quiet_logs() -> Iterator[None]:
    """Hold the service's INFO logs (a line per message) while simulating; warnings still show."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
