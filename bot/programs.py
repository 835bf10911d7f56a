"""Programs: the coordinator-edited folders under narratives/, loaded and validated up front."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.assessments import prompt_hint, question_from_spec

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

    def as_dict(self) -> dict[str, Any]:
        """The form stored with each prompt, so a reply is read as the question was asked."""
        return {
            "type": self.kind,
            "min": self.minimum,
            "max": self.maximum,
            "choices": list(self.choices),
            "thanks": self.thanks,
            "clarify": self.clarify,
        }


@dataclass(frozen=True)
class EventSpec:
    """One outreach message: a goal type, a template, and when it goes out."""

    key: str
    goal: str
    template: str
    at: time
    start_day: int = 0  # days after enrollment of the first occurrence
    every_days: int = 1
    times: int = 1
    assessment: AssessmentSpec | None = None


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


def load_program(folder: Path) -> Program:
    """Load and validate one program folder; every problem is reported, with file:line."""
    path = folder / DEFINITION_FILE
    where = f"{path.parent.name}/{DEFINITION_FILE}"
    if not path.is_file():
        raise ProgramError([f"{where}: missing (every program folder needs one)"])
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506
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

    def template(mapping: _LineDict, key: str) -> str:
        name = text(mapping, key)
        if name and not (folder / name).is_file():
            problems.append(
                f"{at(mapping, key)}: template '{name}' does not exist in {folder.name}/"
            )
        return name

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
    events: list[EventSpec] = []
    raw_events = data.get("events", [])
    if not isinstance(raw_events, list):
        problems.append(f"{at(data, 'events')}: 'events' should be a list")
        raw_events = []
    seen_keys: set[str] = set()
    for raw in raw_events:
        if not isinstance(raw, _LineDict):
            problems.append(
                f"{at(data, 'events')}: each event should be a set of 'key: value' lines"
            )
            continue
        key = text(raw, "key")
        if key in seen_keys:
            problems.append(f"{at(raw, 'key')}: event '{key}' is defined twice")
        seen_keys.add(key)
        goal = text(raw, "goal")
        if goal and goal not in GOAL_TYPES:
            problems.append(
                f"{at(raw, 'goal')}: goal '{goal}' is not one of: {', '.join(GOAL_TYPES)}"
            )
        clock = _clock(raw.get("at", ""))
        if clock is None:
            problems.append(f"{at(raw, 'at')}: 'at' should be a local time like 10:00")
        numbers = {}
        for name, default, minimum in (("start_day", 0, 0), ("every_days", 1, 1), ("times", 1, 1)):
            value = raw.get(name, default)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                problems.append(f"{at(raw, name)}: '{name}' should be a whole number >= {minimum}")
                value = default
            numbers[name] = value
        assessment = None
        if (spec := raw.get("assessment")) is not None:
            question = None
            if not isinstance(spec, _LineDict) or "type" not in spec:
                problems.append(
                    f"{at(raw, 'assessment')}: assessment needs a 'type' (yes_no, scale, choice, "
                    f"number or text)"
                )
            else:
                try:
                    question = question_from_spec(spec)
                except ValueError as exc:
                    line = "min" if spec.get("type") == "scale" and "min" in spec else "type"
                    problems.append(f"{at(spec, line)}: {exc}")
            if question is not None and isinstance(spec, _LineDict):
                assessment = AssessmentSpec(
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
                )
        events.append(
            EventSpec(
                key=key,
                goal=goal,
                template=template(raw, "template"),
                at=clock or time(12, 0),
                assessment=assessment,
                **numbers,
            )
        )
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
        events=tuple(events),
        folder=folder,
        version=_version(folder),
        quiet_hours=quiet_hours,
        daily_cap=daily_cap,
        keywords_line=data.key_lines.get("join_keywords", data.line),
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


_last_good: dict[str, dict[str, Program]] = {}


def live_programs(narratives_dir: Path) -> dict[str, Program]:
    """Programs for the running service: a broken edit keeps the last good version serving.

    STOP, HELP and crisis replies must never depend on a coordinator's typo; the problem is
    logged here and `bot check` names its file and line.
    """
    key = str(narratives_dir)
    try:
        programs = programs_in(narratives_dir)
    except (ProgramError, OSError) as exc:
        logging.getLogger(__name__).error(
            "programs in %s have problems; still serving the last good version:\n%s",
            narratives_dir, exc,
        )
        return _last_good.get(key, {})
    _last_good[key] = programs
    return programs
