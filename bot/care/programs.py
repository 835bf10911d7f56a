"""Programs: the coordinator-edited folders under narratives/, loaded and validated up front.

The typed model is bot.care.program and its reader bot.care.loader; this module loads every
folder of a service, keeps serving the last good version of a program while an edit is broken,
and names the programs whose participants' messages wait. The model's names are exported here
too, as most of the service knows them from here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from bot.care.loader import read_program
from bot.care.program import (
    ANCHORS,
    DEFAULT_TIMEOUT_HOURS,
    DEFINITION_FILE,
    GOAL_TYPES,
    KEY_PATTERN,
    NAME_PATTERN,
    OUTCOMES,
    AssessmentSpec,
    EventSpec,
    Hub,
    Intervention,
    Level,
    Program,
    ProgramError,
    ReEngage,
    StateQuestion,
)

__all__ = [
    "ANCHORS", "DEFAULT_TIMEOUT_HOURS", "DEFINITION_FILE", "GOAL_TYPES", "KEY_PATTERN",
    "NAME_PATTERN", "OUTCOMES", "UNAVAILABLE_RETRY", "AssessmentSpec", "Catalog", "EventSpec",
    "Hub", "Intervention", "Level", "Program", "ProgramError", "ReEngage", "StateQuestion",
    "live_programs", "load_program", "load_programs", "program_folders", "programs_in",
    "unavailable_alert", "unavailable_reason",
]


def load_program(folder: Path) -> Program:
    """Load and validate one program folder; every problem is reported, with file:line.

    Any failure at all comes back as a ProgramError naming the file: a coordinator's file must
    never crash the service that reads it.
    """
    where = f"{folder.name}/{DEFINITION_FILE}"
    try:
        return read_program(folder)
    except ProgramError:
        raise
    except OSError as exc:
        raise ProgramError([f"{where}: cannot be read ({exc.strerror or exc})"]) from None
    except Exception as exc:  # a rule or value that breaks a library in a way we did not foresee
        logging.getLogger(__name__).exception("loading %s failed", where)
        raise ProgramError(
            [f"{where}: could not be loaded ({type(exc).__name__}: {str(exc)[:200]})"]
        ) from None


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


def _refresh(folder: Path, state: _FolderState) -> None:
    """Reload a program folder when one of its files changed; a broken version keeps the last
    good one in `state.good` and its problems in `state.problem`."""
    logger = logging.getLogger(__name__)
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
        _refresh(folder, state)
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
