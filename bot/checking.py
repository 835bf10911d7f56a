"""`bot check`: load every program and render every template against synthetic histories."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.encoding import MAX_CHARACTERS, WARN_SEGMENTS, encode
from bot.narrative import NarrativeError, render
from bot.programs import Program, ProgramError, load_programs


def synthetic_contexts(program: Program) -> dict[str, dict[str, Any]]:
    """Histories a template must cope with: brand new, answering well, answering poorly."""
    enrolled = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    base = {
        "participant": {"timezone": "America/New_York", "enrolled_at": enrolled, "attributes": {}},
        "program": {
            "name": program.name, "title": program.title, "description": program.description,
            "frequency": program.frequency, "contact": program.contact,
        },
    }

    def with_answers(values: list[float | None]) -> dict[str, Any]:
        answers = [{"value": v, "raw": str(v), "at": enrolled} for v in values]
        return {**base, "history": {"answers": answers, "answered": len(answers)}}

    return {
        "new participant": with_answers([]),
        "successes": with_answers([4.0, 5.0, 4.0]),
        "failures": with_answers([1.0, 2.0, None]),
    }


def check_programs(narratives_dir: Path) -> list[str]:
    """Every problem found, each as 'file:line: what is wrong'; warnings are prefixed."""
    try:
        programs = load_programs(narratives_dir)
    except ProgramError as exc:
        return exc.problems
    problems: list[str] = []
    for program in programs.values():
        renders: list[tuple[str, dict[str, Any]]] = [(program.welcome_template, {})]
        for event in program.events:
            for occurrence in sorted({1, event.times}):
                renders.append(
                    (event.template, {"event": {"key": event.key, "occurrence": occurrence,
                                                "times": event.times, "goal": event.goal}})
                )
        for template, extra in renders:
            for persona, context in synthetic_contexts(program).items():
                where = f"{program.name}/{template}"
                try:
                    text = render(program, template, {**context, **extra})
                except NarrativeError as exc:
                    problems.append(f"{exc} (rendering for a {persona})")
                    break
                encoded = encode(text)
                if not encoded.body.strip():
                    problems.append(f"{where}: renders empty for a {persona}")
                elif encoded.characters > MAX_CHARACTERS:
                    problems.append(f"{where}: {encoded.characters} characters for a {persona}")
                elif encoded.segments > WARN_SEGMENTS:
                    problems.append(
                        f"warning: {where}: {encoded.segments} {encoded.encoding} segments "
                        f"for a {persona}"
                    )
    return [p for p in problems if not p.startswith("warning: ")] + [
        p for p in problems if p.startswith("warning: ")
    ]
