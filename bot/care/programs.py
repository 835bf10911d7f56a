"""Programs: the coordinator-edited folders under narratives/, loaded and validated up front."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.care.assessments import prompt_hint, question_from_spec
from bot.care.rules import Rule, RuleError, compile_rule

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


class _LineDict(dict):
    """A YAML mapping that remembers the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> _LineDict:
        mapping = _LineDict(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {
            str(key_node.value): key_node.start_mark.line + 1 for key_node, _ in node.value
        }
        return mapping


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping
)


def _int_or_clock(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | str:
    # YAML 1.1 reads an unquoted 10:00 as the base-60 number 600; coordinators mean a time.
    if ":" in str(node.value):
        return str(node.value)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_LineLoader.add_constructor("tag:yaml.org,2002:int", _int_or_clock)


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


def _version(folder: Path) -> str:
    """Content hash of every file of the program: deliveries record which content they came from."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _clock(text: Any) -> time | None:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", str(text).strip())
    return time(int(match.group(1)), int(match.group(2))) if match else None


def _window(text: Any) -> tuple[time, time] | None:
    match = re.fullmatch(r"\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*", str(text))
    if not match:
        return None
    start, end = _clock(match.group(1)), _clock(match.group(2))
    return (start, end) if start and end and start < end else None


def _anchored(text: Any) -> tuple[str, int] | None:
    """'wake_time', 'wake_time + 0:30', 'dose_time - 0:15' -> (attribute, minutes)."""
    match = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:([+-])\s*(\d{1,2}):([0-5]\d))?\s*",
                         str(text))
    if not match:
        return None
    minutes = int(match.group(3) or 0) * 60 + int(match.group(4) or 0)
    return match.group(1), -minutes if match.group(2) == "-" else minutes


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _read_text(path: Path, where: str) -> str:
    """A content file as text; a file that is not UTF-8 is named with the line of its first bad
    byte, as a coordinator's editor shows it."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ProgramError([
            f"{where}:{line}: this file is not saved as UTF-8 text (byte {raw[exc.start]:#04x} "
            f"cannot be read); save it as UTF-8 in your editor"
        ]) from None


def load_program(folder: Path) -> Program:
    """Load and validate one program folder; every problem is reported, with file:line.

    Any failure at all comes back as a ProgramError naming the file: a coordinator's file must
    never crash the service that reads it.
    """
    where = f"{folder.name}/{DEFINITION_FILE}"
    try:
        return _load_program(folder)
    except ProgramError:
        raise
    except OSError as exc:
        raise ProgramError([f"{where}: cannot be read ({exc.strerror or exc})"]) from None
    except Exception as exc:  # a rule or value that breaks a library in a way we did not foresee
        logging.getLogger(__name__).exception("loading %s failed", where)
        raise ProgramError(
            [f"{where}: could not be loaded ({type(exc).__name__}: {str(exc)[:200]})"]
        ) from None


def _load_program(folder: Path) -> Program:
    path = folder / DEFINITION_FILE
    where = f"{path.parent.name}/{DEFINITION_FILE}"
    if not path.is_file():
        raise ProgramError([f"{where}: missing (every program folder needs one)"])
    source = _read_text(path, where)
    try:
        data = yaml.load(source, Loader=_LineLoader)  # noqa: S506
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ProgramError([f"{where}{line}: this is not valid YAML ({reason})"]) from None
    if not isinstance(data, _LineDict):
        raise ProgramError([f"{where}:1: expected settings like 'title: ...' at the top level"])

    problems: list[str] = []

    def at(mapping: _LineDict, key: str | None = None) -> str:
        line = mapping.key_lines.get(key, mapping.line) if key else mapping.line
        return f"{where}:{line}"

    def text(mapping: _LineDict, key: str, required: bool = True, default: str = "") -> str:
        value = mapping.get(key)
        if value is None:
            if required:
                problems.append(f"{at(mapping)}: '{key}' is missing")
            return default
        if not isinstance(value, str | int | float):
            problems.append(f"{at(mapping, key)}: '{key}' should be text")
            return default
        return str(value).strip()

    def template(mapping: _LineDict, key: str, required: bool = True) -> str:
        name = text(mapping, key, required=required)
        if name and not (folder / name).is_file():
            problems.append(
                f"{at(mapping, key)}: template '{name}' does not exist in {folder.name}/"
            )
        return name

    def whole(mapping: _LineDict, key: str, default: int | None, minimum: int) -> int | None:
        value = mapping.get(key, default)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            problems.append(f"{at(mapping, key)}: '{key}' should be a whole number >= {minimum}")
            return default
        return value

    def rule(mapping: _LineDict, key: str) -> Rule | None:
        if mapping.get(key) is None:
            return None
        try:
            return compile_rule(mapping[key], at(mapping, key))
        except RuleError as exc:
            problems.append(str(exc))
            return None

    def mapping_of(value: Any, where_: str, what: str) -> _LineDict | None:
        if value is None:
            return None
        if not isinstance(value, _LineDict):
            problems.append(f"{where_}: {what} should be a set of 'key: value' lines")
            return None
        return value

    def assessment_of(raw: _LineDict) -> AssessmentSpec | None:
        if (spec := raw.get("assessment")) is None:
            return None
        question = None
        if not isinstance(spec, _LineDict) or "type" not in spec:
            problems.append(
                f"{at(raw, 'assessment')}: assessment needs a 'type' (yes_no, scale, choice, "
                f"number or text)"
            )
            return None
        try:
            question = question_from_spec(spec)
        except ValueError as exc:
            line = "min" if spec.get("type") == "scale" and "min" in spec else "type"
            problems.append(f"{at(spec, line)}: {exc}")
            return None
        timeout = _number(spec.get("timeout_hours", DEFAULT_TIMEOUT_HOURS))
        if timeout is None or timeout <= 0:
            problems.append(f"{at(spec, 'timeout_hours')}: 'timeout_hours' should be a number > 0")
            timeout = DEFAULT_TIMEOUT_HOURS
        reminder_after, reminder_text = None, ""
        if (reminder := mapping_of(spec.get("reminder"), at(spec, "reminder"), "reminder")):
            reminder_after = _number(reminder.get("after_hours"))
            reminder_text = text(reminder, "text")
            if reminder_after is None or not 0 < reminder_after < timeout:
                problems.append(
                    f"{at(reminder, 'after_hours')}: a reminder needs 'after_hours', more than 0 "
                    f"and less than the question's timeout_hours ({timeout:g})"
                )
                reminder_after = None
        return AssessmentSpec(
            kind=question.kind,
            minimum=question.minimum,
            maximum=question.maximum,
            choices=question.choices,
            thanks=text(spec, "thanks", required=False, default="Thanks, noted."),
            clarify=text(
                spec,
                "clarify",
                required=False,
                default=f"Sorry, I didn't catch that. {prompt_hint(question)}",
            ),
            timeout_hours=timeout,
            reminder_after_hours=reminder_after,
            reminder_text=reminder_text,
        )

    attributes: dict[str, str] = {}
    if (raw_attrs := mapping_of(data.get("attributes"), at(data, "attributes"), "attributes")):
        for name, value in raw_attrs.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)):
                problems.append(
                    f"{at(raw_attrs, name)}: attribute '{name}' should be one word "
                    f"(letters, digits, _)"
                )
                continue
            attributes[str(name)] = str(value).strip()

    def event_of(raw: Any, parent: _LineDict, scope: str) -> EventSpec | None:
        if not isinstance(raw, _LineDict):
            problems.append(
                f"{at(parent, 'events')}: each event should be a set of 'key: value' lines"
            )
            return None
        key = text(raw, "key")
        if key and not KEY_PATTERN.match(key):
            problems.append(
                f"{at(raw, 'key')}: event key '{key}' should be one word (a-z, 0-9, _, -)"
            )
        goal = text(raw, "goal")
        if goal and goal not in GOAL_TYPES:
            problems.append(
                f"{at(raw, 'goal')}: goal '{goal}' is not one of: {', '.join(GOAL_TYPES)}"
            )
        alternative = raw.get("alternative", False) is True
        anchor = str(raw.get("from", "start" if scope else "enrollment"))
        if anchor not in ANCHORS or (not scope and anchor == "start"):
            allowed = ANCHORS if scope else ("enrollment", "previous")
            problems.append(f"{at(raw, 'from')}: 'from' should be one of: {', '.join(allowed)}")
            anchor = "enrollment"
        clock, window, attribute, offset = None, None, None, 0
        if raw.get("window") is not None:
            window = _window(raw["window"])
            if window is None:
                problems.append(
                    f"{at(raw, 'window')}: 'window' should be two local times like "
                    f"\"18:00-20:00\", the first earlier"
                )
        elif raw.get("at") is not None:
            clock = _clock(raw["at"])
            if clock is None:
                anchored = _anchored(raw["at"])
                if anchored is None or anchored[0] not in attributes:
                    problems.append(
                        f"{at(raw, 'at')}: 'at' should be a local time like 10:00 or an "
                        f"attribute with a time, like \"wake_time + 0:30\""
                        + (f" (attributes: {', '.join(attributes)})" if attributes else "")
                    )
                else:
                    attribute, offset = anchored
                    clock = _clock(attributes[attribute])
                    if clock is None:
                        problems.append(
                            f"{at(raw, 'at')}: attribute '{attribute}' needs a default time "
                            f"like 07:00 under 'attributes'"
                        )
        elif not alternative:
            problems.append(f"{at(raw)}: event '{key}' needs 'at' (a local time) or 'window'")
        day = whole(raw, "day", None, 0)
        start_day = whole(raw, "start_day", None, 0)
        if day is not None and start_day is not None:
            problems.append(f"{at(raw, 'start_day')}: give 'day' or 'start_day', not both")
        randomize: tuple[tuple[str, float], ...] = ()
        if (raw_random := raw.get("randomize")) is not None:
            options: dict[str, float] = {}
            if isinstance(raw_random, _LineDict) and "probability" in raw_random:
                p = _number(raw_random["probability"])
                if p is None or not 0 < p < 1:
                    problems.append(
                        f"{at(raw_random, 'probability')}: 'probability' should be a number "
                        f"between 0 and 1, like 0.5"
                    )
                else:
                    options = {key: p, "skip": 1 - p}
            elif isinstance(raw_random, _LineDict) and isinstance(
                raw_random.get("choose"), _LineDict
            ):
                choose = raw_random["choose"]
                for option, p in choose.items():
                    value = _number(p)
                    if value is None or not 0 < value <= 1:
                        problems.append(
                            f"{at(choose, option)}: the probability of '{option}' should be a "
                            f"number between 0 and 1"
                        )
                        continue
                    options[str(option)] = value
                total = sum(options.values())
                if options and total > 1 + 1e-9:
                    problems.append(
                        f"{at(raw_random, 'choose')}: the probabilities add up to {total:g}, "
                        f"more than 1"
                    )
                elif options and total < 1 - 1e-9:
                    options["skip"] = 1 - total
            else:
                problems.append(
                    f"{at(raw, 'randomize')}: randomize needs 'probability: 0.5' or "
                    f"'choose: {{event: 0.5, other_event: 0.5}}'"
                )
            randomize = tuple(options.items())
        return EventSpec(
            key=key,
            goal=goal,
            template=template(raw, "template"),
            at=clock or (window[0] if window else time(12, 0)),
            start_day=day if day is not None else (start_day or 0),
            every_days=whole(raw, "every_days", 1, 1) or 1,
            times=whole(raw, "times", 1, 1) or 1,
            assessment=assessment_of(raw),
            anchor=anchor,
            window=window,
            attribute=attribute,
            offset_minutes=offset,
            when=rule(raw, "when"),
            otherwise=text(raw, "otherwise", required=False) or None,
            randomize=randomize,
            alternative=alternative,
            line=raw.line,
        )

    def events_of(parent: _LineDict, scope: str) -> tuple[EventSpec, ...]:
        raw_events = parent.get("events", [])
        if not isinstance(raw_events, list):
            problems.append(f"{at(parent, 'events')}: 'events' should be a list")
            return ()
        found: list[EventSpec] = []
        for raw in raw_events:
            event = event_of(raw, parent, scope)
            if event is None:
                continue
            if any(e.key == event.key for e in found):
                problems.append(f"{where}:{event.line}: event '{event.key}' is defined twice")
            found.append(event)
        keys = {e.key for e in found}
        for event in found:
            refs = [("otherwise", event.otherwise)] + [
                ("randomize", option) for option, _ in event.randomize if option != "skip"
            ]
            for field_name, ref in refs:
                if ref and ref not in keys:
                    problems.append(
                        f"{where}:{event.line}: {field_name} names event '{ref}', which is not "
                        f"an event of {scope or 'this program'}"
                    )
            if event.otherwise and event.when is None:
                problems.append(f"{where}:{event.line}: 'otherwise' needs a 'when' rule")
        if found and all(e.alternative for e in found):
            problems.append(f"{at(parent, 'events')}: every event is an alternative; "
                            f"at least one must be planned")
        return tuple(found)

    title = text(data, "title")
    keywords_raw = data.get("join_keywords", [])
    if isinstance(keywords_raw, str):
        keywords_raw = [keywords_raw]
    if not isinstance(keywords_raw, list) or not all(
        isinstance(k, str) and re.fullmatch(r"[A-Za-z0-9]+", k.strip()) for k in keywords_raw
    ):
        problems.append(
            f"{at(data, 'join_keywords')}: join_keywords must be a list of single words"
        )
        keywords_raw = []
    events = events_of(data, "")

    interventions: list[Intervention] = []
    raw_interventions = mapping_of(
        data.get("interventions"), at(data, "interventions"), "interventions"
    ) or _LineDict()
    levels: list[Level] = []
    level_of: dict[str, str] = {}
    raw_levels = data.get("levels", [])
    if not isinstance(raw_levels, list):
        problems.append(f"{at(data, 'levels')}: 'levels' should be a list, highest priority first")
        raw_levels = []
    for raw in raw_levels:
        if not isinstance(raw, _LineDict):
            problems.append(
                f"{at(data, 'levels')}: each level should be a set of 'key: value' lines"
            )
            continue
        key = text(raw, "key")
        names = raw.get("interventions", [])
        if not isinstance(names, list) or not names:
            problems.append(f"{at(raw, 'interventions')}: level '{key}' needs a list of "
                            f"interventions")
            names = []
        for name in names:
            if str(name) not in raw_interventions:
                problems.append(f"{at(raw, 'interventions')}: intervention '{name}' is not "
                                f"defined under 'interventions'")
            elif str(name) in level_of:
                problems.append(f"{at(raw, 'interventions')}: intervention '{name}' is already "
                                f"in level '{level_of[str(name)]}'")
            else:
                level_of[str(name)] = key
        levels.append(Level(
            key=key, title=text(raw, "title"), rationale=text(raw, "rationale", required=False),
            need=rule(raw, "need"), interventions=tuple(str(n) for n in names),
        ))
    for name, raw in raw_interventions.items():
        line = f"{where}:{raw_interventions.key_lines.get(name, 1)}"
        if not isinstance(raw, _LineDict):
            problems.append(f"{line}: intervention '{name}' should be a set of 'key: value' lines")
            continue
        if not KEY_PATTERN.match(str(name)):
            problems.append(f"{line}: intervention '{name}' should be one word (a-z, 0-9, _, -)")
        if str(name) not in level_of:
            problems.append(f"{line}: intervention '{name}' is in no level (add it to a level's "
                            f"interventions)")
        intervention_events = events_of(raw, str(name))
        if "events" not in raw:
            problems.append(f"{line}: intervention '{name}' needs events")
        outcome: list[tuple[str, Rule]] = []
        if (raw_outcome := mapping_of(raw.get("outcome"), at(raw, "outcome"), "outcome")):
            for result in raw_outcome:
                if result not in OUTCOMES:
                    problems.append(f"{at(raw_outcome, result)}: outcome '{result}' should be one "
                                    f"of: {', '.join(OUTCOMES)}")
                elif (compiled := rule(raw_outcome, result)) is not None:
                    outcome.append((str(result), compiled))
        else:
            problems.append(f"{at(raw)}: intervention '{name}' needs an 'outcome' with an "
                            f"'achieved' rule")
        if outcome and "achieved" not in dict(outcome):
            problems.append(f"{at(raw, 'outcome')}: the outcome needs an 'achieved' rule")
        if "disengaged" not in dict(outcome):
            outcome.append(("disengaged", compile_rule("answered == 0", at(raw))))
        re_engage = None
        if (raw_re := mapping_of(raw.get("re_engage"), at(raw, "re_engage"), "re_engage")):
            event_key = text(raw_re, "event")
            if event_key and not any(e.key == event_key for e in intervention_events):
                problems.append(f"{at(raw_re, 'event')}: re_engage names event '{event_key}', "
                                f"which is not an event of {name}")
            re_engage = ReEngage(
                after_unanswered=whole(raw_re, "after_unanswered", 2, 1) or 2,
                event=event_key,
                per_week=whole(raw_re, "per_week", 1, 0) or 0,
            )
        interventions.append(Intervention(
            key=str(name), title=text(raw, "title"), rationale=text(raw, "rationale"),
            level=level_of.get(str(name), ""), events=intervention_events,
            outcome=tuple(outcome), end_early=rule(raw, "end_early"), re_engage=re_engage,
            line=raw.line,
        ))

    hub = None
    if (raw_hub := mapping_of(data.get("hub"), at(data, "hub"), "hub")):
        state = None
        if (raw_state := mapping_of(raw_hub.get("state_assessment"),
                                    at(raw_hub, "state_assessment"), "state_assessment")):
            spec = assessment_of(raw_state)
            if spec is None and "assessment" not in raw_state:
                problems.append(f"{at(raw_state)}: state_assessment needs an 'assessment'")
            state_key = text(raw_state, "key")
            if spec is not None:
                state = StateQuestion(key=state_key, template=template(raw_state, "template"),
                                      assessment=spec)
        hub_at = _clock(raw_hub.get("at", "18:00"))
        if hub_at is None:
            problems.append(f"{at(raw_hub, 'at')}: 'at' should be a local time like 18:00")
        hub = Hub(
            narrative=template(raw_hub, "narrative", required=False) or None,
            first_day=whole(raw_hub, "first_day", 0, 0) or 0,
            at=hub_at or time(18, 0),
            evaluate_every_days=whole(raw_hub, "evaluate_every_days", None, 1),
            finished=template(raw_hub, "finished", required=False) or None,
            state=state,
        )
    if levels and hub is None:
        problems.append(f"{at(data, 'levels')}: a program with levels needs a 'hub' "
                        f"(at least its narrative)")
    if interventions and not levels:
        problems.append(f"{at(data, 'interventions')}: interventions need 'levels' that order them")
    if not events and not levels:
        problems.append(f"{at(data)}: a program needs 'events' or 'levels' with interventions")

    quiet_hours = None
    if (raw_quiet := data.get("quiet_hours")) is not None:
        start = _clock(raw_quiet.get("start")) if isinstance(raw_quiet, dict) else None
        end = _clock(raw_quiet.get("end")) if isinstance(raw_quiet, dict) else None
        if start is None or end is None:
            problems.append(
                f"{at(data, 'quiet_hours')}: quiet_hours needs 'start' and 'end' like 21:00"
            )
        else:
            quiet_hours = (start, end)
    daily_cap = data.get("daily_cap")
    if daily_cap is not None and (not isinstance(daily_cap, int) or daily_cap < 1):
        problems.append(f"{at(data, 'daily_cap')}: daily_cap should be a whole number >= 1")
        daily_cap = None
    program = Program(
        name=folder.name,
        title=title,
        description=text(data, "description"),
        frequency=text(data, "frequency"),
        contact=text(data, "contact", required=False),
        join_keywords=tuple(k.strip().upper() for k in keywords_raw),
        welcome_template=template(data, "welcome"),
        events=events,
        folder=folder,
        version=_version(folder),
        quiet_hours=quiet_hours,
        daily_cap=daily_cap,
        keywords_line=data.key_lines.get("join_keywords", data.line),
        attributes=tuple(attributes.items()),
        hub=hub,
        levels=tuple(levels),
        interventions=tuple(interventions),
        duration_days=whole(data, "duration_days", None, 1),
        seed=text(data, "seed", required=False) or folder.name,
    )
    if problems:
        raise ProgramError(problems)
    return program


def program_folders(narratives_dir: Path) -> list[Path]:
    if not narratives_dir.is_dir():
        raise ProgramError([f"{narratives_dir}/: no such folder (check NARRATIVES_DIR)"])
    return sorted(
        p for p in narratives_dir.iterdir() if p.is_dir() and (p / DEFINITION_FILE).exists()
    )


def load_programs(narratives_dir: Path) -> dict[str, Program]:
    """Every program under `narratives_dir`; one ProgramError listing all problems."""
    programs: dict[str, Program] = {}
    problems: list[str] = []
    keywords: dict[str, str] = {}
    for folder in program_folders(narratives_dir):
        if not NAME_PATTERN.match(folder.name):
            problems.append(
                f"{folder.name}/{DEFINITION_FILE}:1: the folder name must be lowercase words "
                f"and dashes, like daily-checkin"
            )
            continue
        try:
            program = load_program(folder)
        except ProgramError as exc:
            problems.extend(exc.problems)
            continue
        for keyword in program.join_keywords:
            if keyword in keywords:
                problems.append(
                    f"{folder.name}/{DEFINITION_FILE}:{program.keywords_line}: join keyword "
                    f"{keyword} is already used by {keywords[keyword]}"
                )
            keywords[keyword] = folder.name
        programs[program.name] = program
    if problems:
        raise ProgramError(problems)
    return programs


@lru_cache(maxsize=4)
def _cached(narratives_dir: str, stamp: tuple[tuple[str, float], ...]) -> dict[str, Program]:
    return load_programs(Path(narratives_dir))


def programs_in(narratives_dir: Path) -> dict[str, Program]:
    """Programs, reloaded whenever a file under `narratives_dir` changes."""
    stamp = tuple(
        (str(p), p.stat().st_mtime) for p in sorted(narratives_dir.rglob("*")) if p.is_file()
    )
    return _cached(str(narratives_dir), stamp)


UNAVAILABLE_RETRY = timedelta(minutes=5)  # work for a program that cannot be loaded waits


def unavailable_alert(name: str, reason: str) -> str:
    """An alert's words for a program whose participants' messages wait."""
    return (f"program {name} cannot be loaded, so its participants' messages wait until it "
            f"is fixed (run bot check): {reason}")


class Catalog(dict[str, Program]):
    """The programs a running service serves, and those it cannot load right now.

    `unavailable` maps a program's folder name to its problem (file:line): its folder is there
    but no version of it could ever be loaded by this process, so work for its participants
    waits. A program whose folder is gone was removed on purpose. `everything_unavailable`:
    the narratives folder itself could not be read, so every program's work waits.
    """

    def __init__(
        self,
        programs: dict[str, Program] | None = None,
        unavailable: dict[str, str] | None = None,
        everything_unavailable: str | None = None,
    ):
        super().__init__(programs or {})
        self.unavailable = dict(unavailable or {})
        self.everything_unavailable = everything_unavailable


def unavailable_reason(programs: dict[str, Program], name: str) -> str | None:
    """Why `name` cannot be served right now though it was not removed, or None.

    None for a served program and for one whose folder is gone; a plain dict (tests, tools)
    knows nothing of unavailable programs.
    """
    if name in programs:
        return None
    if isinstance(programs, Catalog):
        return programs.unavailable.get(name) or programs.everything_unavailable
    return None


@dataclass
class _FolderState:
    stamp: tuple[tuple[str, float, int], ...] = ()
    good: Program | None = None
    problem: str | None = None  # the current version's problems, when it does not load


_folders: dict[str, dict[str, _FolderState]] = {}


def _stamp(folder: Path) -> tuple[tuple[str, float, int], ...]:
    return tuple(
        (str(p), p.stat().st_mtime, p.stat().st_size)
        for p in sorted(folder.rglob("*")) if p.is_file()
    )


def live_programs(narratives_dir: Path) -> Catalog:
    """Programs for the running service, each folder on its own: a broken edit keeps the last
    good version of that program serving, and the other programs are unaffected.

    Never raises: STOP, HELP and crisis replies must never depend on a coordinator's file.
    A program with no good version yet is listed as unavailable (its work waits, an alert is
    raised where that work is held back); problems are logged with file and line, and
    `bot check` names them too.
    """
    logger = logging.getLogger(__name__)
    states = _folders.setdefault(str(narratives_dir), {})
    try:
        folders = sorted(
            p for p in narratives_dir.iterdir() if p.is_dir() and NAME_PATTERN.match(p.name)
        )
    except Exception as exc:  # missing, unreadable, not a folder
        reason = f"{narratives_dir}/ cannot be read ({exc}); check NARRATIVES_DIR"
        logger.error("programs: %s", reason)
        good = {name: st.good for name, st in states.items() if st.good is not None}
        return Catalog(good, everything_unavailable=reason)
    catalog = Catalog()
    keywords: dict[str, str] = {}
    for folder in folders:
        state = states.setdefault(folder.name, _FolderState())
        try:
            stamp = _stamp(folder)
            if stamp != state.stamp:
                state.stamp = stamp
                try:
                    state.good, state.problem = load_program(folder), None
                except ProgramError as exc:
                    state.problem = "; ".join(exc.problems)
                    logger.error(
                        "program %s has problems; %s:\n%s", folder.name,
                        "still serving its last good version" if state.good else
                        "its participants' messages wait until it is fixed",
                        "\n".join(exc.problems),
                    )
        except Exception as exc:  # the folder changed while being read
            state.problem = f"{folder.name}/: cannot be read ({exc})"
            logger.error("program %s: %s", folder.name, state.problem)
        program = state.good
        if program is None:
            catalog.unavailable[folder.name] = state.problem or f"{folder.name}/: not loaded"
            continue
        clash = next((k for k in program.join_keywords if k in keywords), None)
        if clash is not None:
            logger.error(
                "%s/%s:%s: join keyword %s is already used by %s; %s is not served",
                folder.name, DEFINITION_FILE, program.keywords_line, clash, keywords[clash],
                folder.name,
            )
            catalog.unavailable[folder.name] = (
                f"{folder.name}/{DEFINITION_FILE}:{program.keywords_line}: join keyword "
                f"{clash} is already used by {keywords[clash]}"
            )
            continue
        keywords.update(dict.fromkeys(program.join_keywords, folder.name))
        catalog[program.name] = program
    for name in set(states) - {f.name for f in folders}:
        del states[name]  # removed on purpose: its participants' schedules end
    return catalog
