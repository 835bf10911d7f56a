"""A program, typed: the model a coordinator's program.yaml describes, once it has been read.

Levels order the micro interventions, each a sequence of events with its own outcome rule; an
event may ask a proximal assessment; the hub recommends and narrates. Reading and checking the
file is bot.care.loader's work; these classes only hold what it found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any

from bot.care.rules import Rule

DEFINITION_FILE = "program.yaml"
GOAL_TYPES = (
    "educational",
    "feedback",
    "change of perspective",
    "trigger action",
    "skill acquisition",
    "load reduction",
    "symptom relief",
    "social/emotional support",
)
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
ANCHORS = ("start", "enrollment", "previous")
OUTCOMES = ("achieved", "not achieved", "disengaged")
DEFAULT_TIMEOUT_HOURS = 36.0


class ProgramError(ValueError):
    """Problems in a program folder, each with the file and line a coordinator should open."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class AssessmentSpec:
    """A proximal assessment: the question an event asks and how its reply is read."""

    kind: str  # yes_no, scale, choice, number, text
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    thanks: str = "Thanks, noted."
    clarify: str = ""
    timeout_hours: float = DEFAULT_TIMEOUT_HOURS  # no reply by then is recorded as missing
    reminder_after_hours: float | None = None
    reminder_text: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The form stored with each prompt, so a reply is read as the question was asked."""
        return {
            "type": self.kind,
            "min": self.minimum,
            "max": self.maximum,
            "choices": list(self.choices),
            "thanks": self.thanks,
            "clarify": self.clarify,
            "timeout_hours": self.timeout_hours,
        }


@dataclass(frozen=True)
class EventSpec:
    """One outreach message: a goal type, a template, when it goes out and its rules."""

    key: str
    goal: str
    template: str
    at: time  # the local time (or the attribute's default time, moved by `offset_minutes`)
    start_day: int = 0  # days after the anchor of the first occurrence
    every_days: int = 1
    times: int = 1
    assessment: AssessmentSpec | None = None
    anchor: str = "enrollment"  # start (of its micro intervention), enrollment or previous
    window: tuple[time, time] | None = None  # a random moment in it instead of `at`
    attribute: str | None = None  # at: "wake_time + 0:30": the participant's attribute ...
    offset_minutes: int = 0  # ... moved by this much
    when: Rule | None = None
    otherwise: str | None = None  # the alternative event sent when `when` does not hold
    randomize: tuple[tuple[str, float], ...] = ()  # (event key or "skip", probability)
    alternative: bool = False  # only sent by otherwise, randomize or re_engage
    line: int = 0

    @property
    def is_decision_point(self) -> bool:
        return self.when is not None or bool(self.randomize)


@dataclass(frozen=True)
class ReEngage:
    after_unanswered: int
    event: str
    per_week: int = 1


@dataclass(frozen=True)
class Intervention:
    """A micro intervention: a focused sequence of events with its own outcome rule."""

    key: str
    title: str
    rationale: str
    level: str
    events: tuple[EventSpec, ...]
    outcome: tuple[tuple[str, Rule], ...]  # (outcome, rule), the first that holds wins
    end_early: Rule | None = None
    re_engage: ReEngage | None = None
    line: int = 0

    def event(self, key: str) -> EventSpec | None:
        return next((e for e in self.events if e.key == key), None)

    @property
    def planned(self) -> tuple[EventSpec, ...]:
        return tuple(e for e in self.events if not e.alternative)


@dataclass(frozen=True)
class Level:
    """A priority level of the program's model, and when a participant needs it."""

    key: str
    title: str
    rationale: str
    need: Rule | None
    interventions: tuple[str, ...]


@dataclass(frozen=True)
class StateQuestion:
    key: str
    template: str
    assessment: AssessmentSpec


@dataclass(frozen=True)
class Hub:
    narrative: str | None = None
    first_day: int = 0
    at: time = time(18, 0)
    evaluate_every_days: int | None = None
    finished: str | None = None
    state: StateQuestion | None = None


@dataclass(frozen=True)
class Program:
    name: str
    title: str
    description: str
    frequency: str
    contact: str
    join_keywords: tuple[str, ...]
    welcome_template: str
    events: tuple[EventSpec, ...]
    folder: Path
    version: str
    quiet_hours: tuple[time, time] | None = None  # None: the service default
    daily_cap: int | None = None
    keywords_line: int = 1  # where join_keywords is, to point at a clash between programs
    attributes: tuple[tuple[str, str], ...] = ()  # (name, default)
    hub: Hub | None = None
    levels: tuple[Level, ...] = ()
    interventions: tuple[Intervention, ...] = ()
    duration_days: int | None = None
    seed: str = ""

    def intervention(self, key: str) -> Intervention | None:
        return next((i for i in self.interventions if i.key == key), None)

    def level(self, key: str) -> Level | None:
        return next((level for level in self.levels if level.key == key), None)

    def find_event(self, event_key: str) -> tuple[Intervention | None, EventSpec | None]:
        """The event a delivery's key ("intervention/event#n" or "event#n") names, if any."""
        name = event_key.partition("#")[0]
        scope, _, key = name.rpartition("/")
        if scope:
            intervention = self.intervention(scope)
            return intervention, intervention.event(key) if intervention else None
        return None, next((e for e in self.events if e.key == key), None)

    @property
    def attribute_defaults(self) -> dict[str, str]:
        return dict(self.attributes)
