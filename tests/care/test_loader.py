"""Reading program.yaml section by section: a mistake in each section is reported, all at once,
each with the line a coordinator should open."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.care.programs import ProgramError, live_programs, load_program

# One mistake in every section of program.yaml: header, attributes, events, hub, levels,
# interventions and an event's assessment.
ONE_MISTAKE_PER_SECTION = """\
title: Calm Kids
description: short ideas for calmer evenings
frequency: about one text a day
join_keywords: [CALM]
welcome: welcome.txt
daily_cap: 0
attributes:
  wake time: "07:00"
events:
  - key: hello
    goal: educational
    template: tip.txt
    at: "10:00"
    randomize: {probability: 2}
hub:
  narrative: narrative.txt
  at: "25:00"
levels:
  - key: calm
    title: Calm
    interventions: [breathing, stretching]
interventions:
  breathing:
    title: Breathe
    rationale: Slow breathing calms stress.
    events:
      - key: practice
        goal: skill acquisition
        template: tip.txt
        at: "19:00"
        assessment:
          type: yes_no
          timeout_hours: 12
          reminder:
            after_hours: 20
            text: Did you try it?
    outcome:
      achieved: "answered >= 1"
      maybe: "answered == 0"
"""


def write_program(root: Path, text: str) -> Path:
    folder = root / "calm-kids"
    folder.mkdir()
    (folder / "program.yaml").write_text(text, encoding="utf-8")
    for name in ("welcome.txt", "tip.txt", "narrative.txt"):
        (folder / name).write_text("Hello.\n", encoding="utf-8")
    return folder


def test_a_mistake_in_every_section_is_reported_at_once_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(ProgramError) as caught:
        load_program(write_program(tmp_path, ONE_MISTAKE_PER_SECTION))
    where = "calm-kids/program.yaml"
    assert caught.value.problems == [
        f"{where}:8: attribute 'wake time' should be one word (letters, digits, _)",
        f"{where}:14: 'probability' should be a number between 0 and 1, like 0.5",
        f"{where}:21: intervention 'stretching' is not defined under 'interventions'",
        f"{where}:35: a reminder needs 'after_hours', more than 0 and less than the question's "
        f"timeout_hours (12)",
        f"{where}:39: outcome 'maybe' should be one of: achieved, not achieved, disengaged",
        f"{where}:17: 'at' should be a local time like 18:00",
        f"{where}:6: daily_cap should be a whole number >= 1",
    ]


def test_a_program_folder_without_program_yaml_is_named_and_waits(tmp_path: Path) -> None:
    (tmp_path / "calm-kids").mkdir()
    (tmp_path / "calm-kids" / "welcome.txt").write_text("Hello.\n", encoding="utf-8")
    with pytest.raises(ProgramError) as caught:
        load_program(tmp_path / "calm-kids")
    assert caught.value.problems == [
        "calm-kids/program.yaml: missing (every program folder needs one)"
    ]
    catalog = live_programs(tmp_path)
    assert "calm-kids" not in catalog
    assert catalog.unavailable == {
        "calm-kids": "calm-kids/program.yaml: missing (every program folder needs one)"
    }


def test_a_top_level_that_is_not_settings_is_named_at_line_one(tmp_path: Path) -> None:
    with pytest.raises(ProgramError) as caught:
        load_program(write_program(tmp_path, "- title: Calm Kids\n"))
    assert caught.value.problems == [
        "calm-kids/program.yaml:1: expected settings like 'title: ...' at the top level"
    ]
