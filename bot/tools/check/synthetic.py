"""Synthetic participants for `bot check`: the contexts production gives templates and rules.

The contexts mirror `context.message_context` (templates) and `state.rule_context`
(rules); tests/tools/test_check.py compares their shape with the real ones on a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from bot.care.context import History, intervention_place
from bot.care.narrative import base_context
from bot.care.planning import attributes_of
from bot.care.programs import AssessmentSpec, Intervention, Program
from bot.care.rules import counting
from bot.care.timing import local_moment, zone
from bot.store.models import Participant

TIMEZONE = "America/New_York"
ENROLLED = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York
NO_EVENT = {"key": "", "occurrence": 0, "times": 0, "goal": ""}  # deliveries without an event
PAST_TALLY = {  # asked, answered, missing of a past intervention with this outcome
    "achieved": (5, 5, 0),
    "not achieved": (5, 2, 3),
    "disengaged": (5, 0, 5),
}


@dataclass(frozen=True)
class Persona:
    """A synthetic participant history every template and rule must cope with."""

    name: str
    outcome: str | None  # how their past interventions ended; None: they have none yet
    answers: tuple[float | None, ...]  # their replies, oldest first (None: free text)
    run_answers: tuple[float | None, ...]  # replies within the intervention running now
    run_missing: int  # questions of that intervention that timed out unanswered
    unanswered_in_a_row: int
    response_rate: float
    state: str | None  # "high" or "low" answers to the state assessment; None: never answered
    day: int  # days since enrollment

    @property
    def run_day(self) -> int:
        return 0 if self.outcome is None else 3


PERSONAS = (
    Persona("new participant", None, (), (), 0, 0, 1.0, None, 0),
    Persona("successes", "achieved", (4.0, 5.0, 4.0, 5.0, 5.0), (4.0, 5.0, 4.0), 0, 0, 1.0,
            "high", 35),
    Persona("failures", "not achieved", (2.0, 1.0, None, 1.0), (1.0, None, 2.0), 2, 1, 0.4,
            "low", 35),
    Persona("disengaged", "disengaged", (3.0,), (), 3, 4, 0.0, None, 35),
)


def _state_value(spec: AssessmentSpec, level: str | None) -> float | str | None:
    """What `state_of` holds after a high or low answer (text answers keep their label)."""
    if level is None:
        return None
    if spec.kind == "text":
        return "fine, thanks" if level == "high" else "not great"
    low, high = {
        "yes_no": (0, 1),
        "choice": (1, len(spec.choices) or 1),
    }.get(spec.kind, (spec.minimum or 0, spec.maximum if spec.maximum is not None else 10))
    return float(high if level == "high" else low)


class Synthetic:
    """One persona in one program: the contexts templates and rules see."""

    def __init__(self, program: Program, persona: Persona) -> None:
        self.program, self.persona = program, persona
        self.participant = Participant(
            id=1, phone="", program=program.name, timezone=TIMEZONE, enrolled_at=ENROLLED,
            attributes={} if persona.outcome is None else dict(program.attributes),
        )
        self.base = base_context(self.participant, program)
        self.today = ENROLLED.astimezone(zone(TIMEZONE)).date() + timedelta(days=persona.day)
        state = program.hub.state if program.hub else None
        self.state = {state.key: _state_value(state.assessment, persona.state)} if state else {}

    def moment(self, clock: time) -> datetime:
        return local_moment(self.today, clock, zone(TIMEZONE))

    def _summary(self, intervention: Intervention, index: int, outcome: str | None,
                 tally: tuple[int, int, int]) -> dict[str, Any]:
        """Mirrors `outcomes.run_summary`."""
        level = self.program.level(intervention.level)
        started = self.moment(time(18)) - timedelta(days=7 * index)
        return {
            "key": intervention.key,
            "title": intervention.title,
            "level": level.title if level else intervention.level,
            "started": started,
            "ended": started + timedelta(days=6) if outcome else None,
            "outcome": outcome,
            "asked": tally[0],
            "answered": tally[1],
            "missing": tally[2],
        }

    def past(self, current: Intervention | None) -> list[dict[str, Any]]:
        """Interventions that ended before `current`, oldest first; a struggling participant
        tried `current` once already."""
        outcome = self.persona.outcome
        if outcome is None:
            return []
        tried = [i for i in self.program.interventions if i is not current]
        if current is not None and outcome != "achieved":
            tried.insert(0, current)
        return [
            self._summary(intervention, len(tried) - index, outcome, PAST_TALLY[outcome])
            for index, intervention in enumerate(tried)
        ]

    def running(self, intervention: Intervention, fresh: bool) -> dict[str, Any]:
        """The intervention running now: just started (`fresh`), or with the persona's replies."""
        answered = len(self.persona.run_answers)
        tally = (0, 0, 0) if fresh else (
            answered + self.persona.run_missing, answered, self.persona.run_missing
        )
        return self._summary(intervention, 0, None, tally)

    def history(self, current: Intervention | None = None, fresh: bool = False
                ) -> History:
        """Mirrors the `history` of `context.message_context`, of the same type: a template
        that treats it as other than a mapping fails here as it would at send time."""
        moment = self.moment(time(12))
        count = len(self.persona.answers)
        runs = self.past(current) + ([self.running(current, fresh)] if current else [])
        parts: dict[str, Any] = {
            "answers": [
                {"value": value, "raw": f"{value:g}" if value is not None else "busy day",
                 "at": moment - timedelta(days=count - index)}
                for index, value in enumerate(self.persona.answers)
            ],
            "answered": count,
            "interventions": runs if self.program.interventions else [],
        }
        return History({name: (lambda part=part: part) for name, part in parts.items()})

    def message(self, event: dict[str, Any], current: Intervention | None = None,
                fresh: bool = False) -> dict[str, Any]:
        """A delivery's template context (`context.message_context`)."""
        return {**self.base, "event": event, "history": self.history(current, fresh)}

    def narrative(self, intervention: Intervention, reason: str) -> dict[str, Any]:
        """The hub's narrative before `intervention` starts (`context.narrative_context`)."""
        levels = list(self.program.levels)
        index = next((i for i, lv in enumerate(levels) if lv.key == intervention.level), 0)
        level = levels[index] if levels else None
        past = self.past(intervention)
        previous = past[-1] if past else None
        why = f"level {index + 1} of {len(levels)} ({level.title if level else ''})" + (
            " is in need" if level is not None and level.need is not None else " comes first"
        )
        if previous is not None and previous["outcome"] != "achieved":
            why += f"; {previous['key']} not repeated at once"
        current, following = intervention_place(self.program, intervention, why)
        return {
            **self.message(dict(NO_EVENT), intervention, fresh=True),
            "previous": previous,
            "current": current,
            "next": following,
            "reason": reason,
        }

    def rules(self, *, in_run: bool, occurrence: int, times: int, clock: time
              ) -> dict[str, Any]:
        """Every name a rule can use (`state.rule_context`); `in_run`: for a running
        intervention, else for the hub and program-wide events."""
        persona = self.persona
        if in_run:
            values = [v for v in persona.run_answers if v is not None]
            answered = len(persona.run_answers)
            tally = {"asked": answered + persona.run_missing, "answered": answered,
                     "missing": persona.run_missing}
        else:
            values, tally = [], {"asked": 0, "answered": 0, "missing": 0}
        outcomes = {run["key"]: run["outcome"] for run in self.past(None)}
        return {
            **counting(values),
            **tally,
            "unanswered_in_a_row": persona.unanswered_in_a_row,
            "response_rate": persona.response_rate,
            "state": dict(self.state),
            "attributes": attributes_of(self.participant, self.program),
            "outcomes": outcomes,
            "day": persona.day,
            "run_day": persona.run_day if in_run else 0,
            "occurrence": occurrence,
            "times": times,
            "local_hour": clock.hour,
            "weekday": self.today.weekday(),
        }
