"""What `bot check` tries: every template with each context production can render it in, every
rule with each context production evaluates it in, and the plain texts assessments send."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import time
from typing import Any

from bot.care.programs import DEFINITION_FILE, AssessmentSpec, EventSpec, Intervention, Program
from bot.care.rules import Rule
from bot.tools.check.synthetic import NO_EVENT, Persona, Synthetic

# Why the hub sends a narrative: the evaluation reasons production records.
NARRATIVE_REASONS = ("start", "state", "ended", "periodic", "checkin", "resume")
FIRST_REASONS = ("start", "state")  # a new participant's first narrative


@dataclass(frozen=True)
class Render:
    """One template rendered with one context; `usage` says which message it is."""

    template: str
    context: dict[str, Any]
    usage: str


@dataclass(frozen=True)
class RuleCheck:
    """One rule evaluated with one context, as production evaluates it."""

    rule: Rule
    context: dict[str, Any]


def _event(event: EventSpec, occurrence: int, times: int | None = None) -> dict[str, Any]:
    return {"key": event.key, "occurrence": occurrence, "times": times or event.times,
            "goal": event.goal}


def _occurrences(event: EventSpec) -> list[int]:
    return sorted({1, event.times})


def _referrers(alternative: EventSpec, events: tuple[EventSpec, ...],
               intervention: Intervention | None) -> list[EventSpec]:
    """The planned events `alternative` can be sent in place of."""
    found = [
        e for e in events if not e.alternative and (
            e.otherwise == alternative.key
            or any(option == alternative.key for option, _ in e.randomize)
        )
    ]
    re_engage = intervention.re_engage if intervention else None
    if re_engage is not None and re_engage.event == alternative.key:
        found += [e for e in events if not e.alternative and e.assessment and e not in found]
    return found


def _event_renders(synthetic: Synthetic, events: tuple[EventSpec, ...],
                   intervention: Intervention | None) -> Iterator[Render]:
    scope = f"{intervention.key}/" if intervention else ""
    for event in events:
        if not event.alternative:
            for n in _occurrences(event):
                yield Render(event.template, synthetic.message(_event(event, n), intervention),
                             f"event {scope}{event.key} {n} of {event.times}")
            continue
        # Sent in place of a planned event, with that event's occurrence number and count.
        referrers = _referrers(event, events, intervention)
        numbers = sorted({(n, r.times) for r in referrers for n in _occurrences(r)}) or [(1, 1)]
        for n, times in numbers:
            yield Render(event.template,
                         synthetic.message(_event(event, n, times), intervention),
                         f"event {scope}{event.key} in place of occurrence {n}")


def renders(program: Program, persona: Persona) -> Iterator[Render]:
    """Every template of `program` with each context production can give it for `persona`."""
    synthetic = Synthetic(program, persona)
    # A welcome comes before any history.
    if persona.outcome is None:
        yield Render(program.welcome_template, synthetic.message(dict(NO_EVENT)), "welcome")
    yield from _event_renders(synthetic, program.events, None)
    for intervention in program.interventions:
        yield from _event_renders(synthetic, intervention.events, intervention)
    hub = program.hub
    if hub is None:
        return
    if hub.narrative:
        reasons = FIRST_REASONS if persona.outcome is None else NARRATIVE_REASONS
        for intervention in program.interventions:
            for reason in reasons:
                yield Render(hub.narrative, synthetic.narrative(intervention, reason),
                             f"narrative before {intervention.key}, reason '{reason}'")
    if hub.state is not None:
        yield Render(hub.state.template, synthetic.message(dict(NO_EVENT)), "state question")
    if hub.finished:
        yield Render(hub.finished, synthetic.message(dict(NO_EVENT)), "finished")


def rule_checks(program: Program, persona: Persona) -> Iterator[RuleCheck]:
    """Every rule of `program` with each context production evaluates it in for `persona`."""
    synthetic = Synthetic(program, persona)
    hub_at = program.hub.at if program.hub else time(18)
    for level in program.levels:
        if level.need is not None:
            yield RuleCheck(level.need, synthetic.rules(in_run=False, occurrence=0, times=0,
                                                        clock=hub_at))
    for event in program.events:
        if event.when is not None and not event.alternative:
            for n in _occurrences(event):
                yield RuleCheck(event.when, synthetic.rules(in_run=False, occurrence=n,
                                                            times=event.times, clock=event.at))
    for intervention in program.interventions:
        for event in intervention.planned:
            for n in _occurrences(event):
                context = synthetic.rules(in_run=True, occurrence=n, times=event.times,
                                          clock=event.at)
                if intervention.end_early is not None:
                    yield RuleCheck(intervention.end_early, context)
                if event.when is not None:
                    yield RuleCheck(event.when, context)
        closing = synthetic.rules(in_run=True, occurrence=0, times=0, clock=hub_at)
        for _, rule in intervention.outcome:
            yield RuleCheck(rule, closing)


def assessment_texts(program: Program) -> Iterator[tuple[str, str, str]]:
    """(where, what, text) of the plain texts assessments send: reminders, thanks, clarify."""
    yaml = f"{program.name}/{DEFINITION_FILE}"
    specs: list[tuple[str, str, AssessmentSpec | None]] = [
        (f"{yaml}:{e.line}", f"event '{e.key}'", e.assessment) for e in program.events
    ]
    specs += [(f"{yaml}:{e.line}", f"event '{i.key}/{e.key}'", e.assessment)
              for i in program.interventions for e in i.events]
    if program.hub is not None and program.hub.state is not None:
        specs.append((yaml, "the state assessment", program.hub.state.assessment))
    for where, owner, spec in specs:
        if spec is None:
            continue
        if spec.reminder_after_hours is not None:
            yield where, f"the reminder of {owner}", spec.reminder_text
        yield where, f"the thanks of {owner}", spec.thanks
        yield where, f"the clarify text of {owner}", spec.clarify
