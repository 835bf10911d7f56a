"""`bot check`: load every program, render every template and evaluate every rule against
synthetic participants, with the context production gives them at send time.

The contexts mirror `context.message_context` (templates) and `engine.rule_context`
(rules); tests/tools/test_check.py compares their shape with the real ones on a database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, nodes

from bot.care.context import intervention_place
from bot.care.narrative import NarrativeError, base_context, render
from bot.care.planning import attributes_of
from bot.care.programs import (
    DEFINITION_FILE,
    AssessmentSpec,
    EventSpec,
    Intervention,
    Program,
    ProgramError,
    load_programs,
)
from bot.care.rules import Rule, RuleError, counting
from bot.care.timing import local_moment, zone
from bot.delivery.encoding import MAX_CHARACTERS, WARN_SEGMENTS, encode
from bot.store.models import Participant

TIMEZONE = "America/New_York"
ENROLLED = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in New York
# Why the hub sends a narrative: the evaluation reasons production records.
NARRATIVE_REASONS = ("start", "state", "ended", "periodic", "checkin", "resume")
FIRST_REASONS = ("start", "state")  # a new participant's first narrative
NO_EVENT = {"key": "", "occurrence": 0, "times": 0, "goal": ""}  # deliveries without an event
DICT_METHODS = frozenset({"get", "keys", "values", "items"})
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
        """Mirrors `engine.run_summary`."""
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
                ) -> dict[str, Any]:
        """Mirrors the `history` of `context.message_context`."""
        moment = self.moment(time(12))
        count = len(self.persona.answers)
        runs = self.past(current) + ([self.running(current, fresh)] if current else [])
        return {
            "answers": [
                {"value": value, "raw": f"{value:g}" if value is not None else "busy day",
                 "at": moment - timedelta(days=count - index)}
                for index, value in enumerate(self.persona.answers)
            ],
            "answered": count,
            "interventions": runs if self.program.interventions else [],
        }

    def message(self, event: dict[str, Any], current: Intervention | None = None,
                fresh: bool = False) -> dict[str, Any]:
        """A delivery's template context (`context.message_context`)."""
        return {**self.base, "event": event, "history": self.history(current, fresh)}

    def narrative(self, intervention: Intervention, reason: str) -> dict[str, Any]:
        """The hub's narrative before `intervention` starts (`engine.narrative_context`)."""
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
        """Every name a rule can use (`engine.rule_context`); `in_run`: for a running
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


_PARSER = Environment()


def _lookups(rule: Rule) -> tuple[set[str], set[tuple[str, str]]]:
    """The names a rule reads, and the keys it reads of a name (state.stress,
    outcomes['gratitude'], outcomes.get('gratitude'), 'gratitude' in outcomes)."""
    tree = _PARSER.parse("{{ (" + rule.source + ") }}")
    names = {node.name for node in tree.find_all(nodes.Name)}
    keys: set[tuple[str, str]] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Call, nodes.Compare)):
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            if node.attr not in DICT_METHODS:
                keys.add((node.node.name, node.attr))
        elif isinstance(node, nodes.Getitem) and isinstance(node.node, nodes.Name):
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                keys.add((node.node.name, node.arg.value))
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            owner, args = node.node.node, node.args
            if (node.node.attr == "get" and isinstance(owner, nodes.Name) and args
                    and isinstance(args[0], nodes.Const) and isinstance(args[0].value, str)):
                keys.add((owner.name, args[0].value))
        elif isinstance(node, nodes.Compare) and isinstance(node.expr, nodes.Const):
            for operand in node.ops:
                if operand.op in ("in", "notin") and isinstance(operand.expr, nodes.Name):
                    keys.add((operand.expr.name, str(node.expr.value)))
    return names, keys


def _unknown_keys(rule: Rule, program: Program) -> list[str]:
    """Keys a rule reads that this program never fills in: a typo that would never hold."""
    state = program.hub.state if program.hub else None
    known = {
        "state": ({state.key} if state else set(), "the program's state assessment",
                  state.key if state else "none"),
        "outcomes": ({i.key for i in program.interventions}, "the program's interventions",
                     ", ".join(i.key for i in program.interventions) or "none"),
        "attributes": (set(program.attribute_defaults), "the program's attributes",
                       ", ".join(program.attribute_defaults) or "none"),
    }
    problems = []
    for name, key in sorted(_lookups(rule)[1]):
        if name in known and key not in known[name][0]:
            _, what, listed = known[name]
            problems.append(f"{rule.where}: rule '{rule.source}' reads {name} '{key}', which is "
                            f"not one of {what} ({listed})")
    return problems


def _hint(rule: Rule, context: dict[str, Any], failure: str) -> str:
    """How to write a rule that failed so it copes with this participant."""
    names, keys = _lookups(rule)
    empty = [n for n in sorted(names) if n in context and context[n] is None]
    empty += [f"state.{k}" for name, k in sorted(keys)
              if name == "state" and k in context["state"] and context["state"][k] is None]
    if empty and "NoneType" in failure:
        return f"; {empty[0]} is none then: write '{empty[0]} is not none and ...'"
    untried = [k for name, k in sorted(keys) if name == "outcomes" and k not in context["outcomes"]]
    if untried and "NoneType" not in failure:
        return (f"; outcomes has no '{untried[0]}' before it is tried: write "
                f"\"outcomes.get('{untried[0]}') == ...\"")
    return ""


class Findings:
    """Problems, each reported once: the first persona that shows it, or the worst size."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, ...], tuple[int, str]] = {}

    def add(self, key: tuple[str, ...], message: str, size: int = 0) -> None:
        if key not in self._found or size > self._found[key][0]:
            self._found[key] = (size, message)

    def messages(self) -> list[str]:
        """Errors first; a length warning is left out where the same text is too long."""
        found = [message for key, (_, message) in self._found.items()
                 if not (key[0] == "segments" and ("long", *key[1:]) in self._found)]
        return [m for m in found if not m.startswith("warning: ")] + [
            m for m in found if m.startswith("warning: ")
        ]


def _check_text(findings: Findings, where: str, what: str, text: str, suffix: str = "") -> None:
    """Length and encoding of one message; `where` names its file (and line)."""
    encoded = encode(text)
    if not encoded.body.strip():
        findings.add(("empty", where, what), f"{where}: {what} is empty{suffix}")
    elif encoded.characters > MAX_CHARACTERS:
        findings.add(("long", where, what),
                     f"{where}: {what} is {encoded.characters} characters, more than the "
                     f"{MAX_CHARACTERS} a text can carry{suffix}", encoded.characters)
    elif encoded.segments > WARN_SEGMENTS:
        findings.add(("segments", where, what),
                     f"warning: {where}: {what} takes {encoded.segments} {encoded.encoding} "
                     f"segments; keep messages to {WARN_SEGMENTS}{suffix}", encoded.segments)


def _assessment_texts(program: Program) -> Iterator[tuple[str, str, str]]:
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


def check_program(program: Program) -> list[str]:
    """Every problem of one loaded program; warnings are prefixed "warning: "."""
    findings = Findings()
    for where, what, text in _assessment_texts(program):
        _check_text(findings, where, what, text)
    rules = {(c.rule.where, c.rule.source): c.rule for c in rule_checks(program, PERSONAS[0])}
    # A rule reading a key the program never fills in has that one problem, reported once.
    misspelt: set[tuple[str, str]] = set()
    for key, rule in rules.items():
        for problem in _unknown_keys(rule, program):
            findings.add(("unknown", problem), problem)
            misspelt.add(key)
    for persona in PERSONAS:
        who = f" (for the {persona.name} persona"
        for job in renders(program, persona):
            where = f"{program.name}/{job.template}"
            try:
                text = render(program, job.template, job.context)
            except NarrativeError as exc:
                findings.add(("render", str(exc)), f"{exc}{who}, {job.usage})")
                continue
            _check_text(findings, where, "the message", text, f"{who}, {job.usage})")
        for check in rule_checks(program, persona):
            if (check.rule.where, check.rule.source) in misspelt:
                continue
            try:
                check.rule.holds(check.context)
            except RuleError as exc:
                findings.add(("rule", check.rule.where, check.rule.source),
                             f"{exc}{who}){_hint(check.rule, check.context, str(exc))}")
    return findings.messages()


def check_programs(narratives_dir: Path) -> list[str]:
    """Every problem found, each as 'file:line: what is wrong'; warnings are prefixed."""
    try:
        programs = load_programs(narratives_dir)
    except ProgramError as exc:
        return exc.problems
    problems: list[str] = []
    for program in programs.values():
        problems.extend(check_program(program))
    return [p for p in problems if not p.startswith("warning: ")] + [
        p for p in problems if p.startswith("warning: ")
    ]
