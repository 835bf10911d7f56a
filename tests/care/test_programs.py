"""Programs: the shipped ones load, and every mistake a coordinator can make names file and line."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import time
from pathlib import Path

import pytest

from bot.care.programs import GOAL_TYPES, ProgramError, load_program, load_programs

ROOT = Path(__file__).resolve().parents[2]

# A small program whose line numbers the cases below refer to.
PROGRAM = """\
# A test program.
title: Sleep Well
description: two weeks of short sleep tips
frequency: one text a day
contact: the sleep study team
join_keywords: [SLEEP]
welcome: welcome.txt
events:
  - key: tip
    goal: educational
    template: tip.txt
    at: "09:30"
    start_day: 1
    times: 14
  - key: rating
    goal: feedback
    template: rating.txt
    at: 20:00
    times: 3
    every_days: 2
    assessment:
      type: scale
      min: 0
      max: 10
      thanks: Thank you.
"""


def write_program(root: Path, name: str = "sleep-well", text: str = PROGRAM) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "program.yaml").write_text(text, encoding="utf-8")
    (folder / "welcome.txt").write_text("Welcome to {{ program.title }}.\n", encoding="utf-8")
    (folder / "tip.txt").write_text("Tip {{ event.occurrence }}.\n", encoding="utf-8")
    (folder / "rating.txt").write_text("How did you sleep? 0-10\n", encoding="utf-8")
    return folder


def test_the_shipped_programs_load() -> None:
    programs = load_programs(ROOT / "narratives")
    checkin = programs["daily-checkin"]
    assert checkin.title == "Daily Check-in"
    assert checkin.join_keywords == ("JOIN", "CHECKUP")
    assert [e.key for e in checkin.events] == ["daily_tip", "evening_rating"]
    assert all(e.goal in GOAL_TYPES for e in checkin.events)
    assert all((checkin.folder / e.template).is_file() for e in checkin.events)
    assert (checkin.folder / checkin.welcome_template).is_file()


def test_a_valid_program_is_read_as_written(tmp_path: Path) -> None:
    program = load_program(write_program(tmp_path))
    assert program.name == "sleep-well"
    assert program.title == "Sleep Well"
    assert program.join_keywords == ("SLEEP",)
    tip, rating = program.events
    assert (tip.at, tip.start_day, tip.every_days, tip.times) == (time(9, 30), 1, 1, 14)
    # An unquoted 20:00 is a time, not YAML 1.1's base-60 number 1200.
    assert (rating.at, rating.start_day, rating.every_days, rating.times) == (time(20), 0, 2, 3)
    assert rating.assessment is not None
    assert (rating.assessment.minimum, rating.assessment.maximum) == (0, 10)
    assert rating.assessment.thanks == "Thank you."
    assert "0 to 10" in rating.assessment.clarify


@pytest.mark.parametrize(
    ("old", "new", "line", "reason"),
    [
        # A colon inside an unquoted value: the commonest way to break YAML.
        ("two weeks of", "tips: two weeks of", 3, "not valid YAML"),
        ("title: Sleep Well\n", "title: Sleep Well\n  oops: here\n", 3, "not valid YAML"),
        ("title: Sleep Well\n", "", 2, "'title' is missing"),
        ("goal: educational", "goal: cheering up", 10, "goal 'cheering up' is not one of"),
        ('at: "09:30"', 'at: "9.30am"', 12, "'at' should be a local time"),
        ('at: "09:30"', "at: 25:00", 12, "'at' should be a local time"),
        ("times: 14", "times: -1", 14, "'times' should be a whole number >= 1"),
        ("start_day: 1", "start_day: -3", 13, "'start_day' should be a whole number >= 0"),
        ("every_days: 2", "every_days: 0", 20, "'every_days' should be a whole number >= 1"),
        ("template: tip.txt", "template: tips.txt", 11, "template 'tips.txt' does not exist"),
        ("welcome: welcome.txt", "welcome: hello.txt", 7, "template 'hello.txt' does not exist"),
        ("key: rating", "key: tip", 15, "event 'tip' is defined twice"),
        ("type: scale", "type: likert", 22, "type 'likert'; use one of yes_no, scale"),
        ("min: 0", "min: 11", 23, "'min' (11) must be below 'max'"),
        ("join_keywords: [SLEEP]", "join_keywords: [SLEEP WELL]", 6, "single words"),
    ],
)
def test_a_mistake_in_program_yaml_names_the_file_and_line(
    tmp_path: Path, old: str, new: str, line: int, reason: str
) -> None:
    assert old in PROGRAM
    folder = write_program(tmp_path, text=PROGRAM.replace(old, new, 1))
    with pytest.raises(ProgramError) as caught:
        load_program(folder)
    assert any(
        problem.startswith(f"sleep-well/program.yaml:{line}: ") and reason in problem
        for problem in caught.value.problems
    ), caught.value.problems


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = PROGRAM.replace("goal: educational", "goal: fun").replace("times: 3", "times: zero")
    with pytest.raises(ProgramError) as caught:
        load_program(write_program(tmp_path, text=text))
    assert [p.split(": ")[0] for p in caught.value.problems] == [
        "sleep-well/program.yaml:10",
        "sleep-well/program.yaml:19",
    ]


def test_a_join_keyword_used_by_two_programs_is_refused(tmp_path: Path) -> None:
    write_program(tmp_path, "sleep-well")
    write_program(tmp_path, "sleep-better", PROGRAM.replace("[SLEEP]", "[REST, sleep]"))
    with pytest.raises(ProgramError) as caught:
        load_programs(tmp_path)
    [problem] = caught.value.problems
    assert problem.startswith("sleep-well/program.yaml:6: ")
    assert "join keyword SLEEP is already used by sleep-better" in problem


def test_a_folder_name_with_capitals_is_refused(tmp_path: Path) -> None:
    write_program(tmp_path, "Sleep-Well")
    with pytest.raises(ProgramError) as caught:
        load_programs(tmp_path)
    [problem] = caught.value.problems
    assert problem.startswith("Sleep-Well/program.yaml:1: ")
    assert "lowercase" in problem


def test_a_missing_narratives_folder_is_reported_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(ProgramError, match="no such folder"):
        load_programs(tmp_path / "narratves")


def test_a_folder_without_program_yaml_is_not_a_program(tmp_path: Path) -> None:
    write_program(tmp_path)
    (tmp_path / "drafts").mkdir()
    (tmp_path / "drafts" / "notes.txt").write_text("ideas", encoding="utf-8")
    assert list(load_programs(tmp_path)) == ["sleep-well"]


@pytest.mark.parametrize(
    "change",
    [
        lambda folder: (folder / "tip.txt").write_text("Tip!\n", encoding="utf-8"),
        lambda folder: (folder / "program.yaml").write_text(
            PROGRAM.replace("Sleep Well", "Sleep Better"), encoding="utf-8"
        ),
        lambda folder: (folder / "extra.txt").write_text("more\n", encoding="utf-8"),
        lambda folder: (folder / "notes.txt").rename(folder / "notes-old.txt"),
        lambda folder: (folder / "notes.txt").unlink(),
    ],
    ids=["template edited", "program.yaml edited", "file added", "file renamed", "file removed"],
)
def test_the_version_changes_when_any_file_changes(
    tmp_path: Path, change: Callable[[Path], object]
) -> None:
    folder = write_program(tmp_path)
    (folder / "notes.txt").write_text("ideas for next time\n", encoding="utf-8")
    before = load_program(folder).version
    change(folder)
    assert load_program(folder).version != before


def test_the_version_stays_the_same_when_nothing_changes(tmp_path: Path) -> None:
    folder = write_program(tmp_path)
    version = load_program(folder).version
    (folder / "tip.txt").touch()  # a newer modification time, the same content
    copy = tmp_path / "copy" / "sleep-well"
    shutil.copytree(folder, copy)
    assert load_program(folder).version == version
    assert load_program(copy).version == version
