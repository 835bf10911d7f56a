"""`bot check`: load every program, render every template and evaluate every rule against
synthetic participants, with the context production gives them at send time.

`synthetic` holds the participants and their contexts, `cases` what is tried with them,
`rules` what a rule reads, `findings` how problems are reported.
"""

from __future__ import annotations

from pathlib import Path

from bot.care.narrative import NarrativeError, render
from bot.care.programs import Program, ProgramError, load_programs
from bot.care.rules import RuleError
from bot.tools.check.cases import Render, RuleCheck, assessment_texts, renders, rule_checks
from bot.tools.check.findings import Findings, check_text
from bot.tools.check.rules import hint, unknown_keys
from bot.tools.check.synthetic import NO_EVENT, PERSONAS, Persona, Synthetic

__all__ = [
    "NO_EVENT", "PERSONAS", "Persona", "Render", "RuleCheck", "Synthetic", "check_program",
    "check_programs", "renders", "rule_checks",
]


def check_program(program: Program) -> list[str]:
    """Every problem of one loaded program; warnings are prefixed "warning: "."""
    findings = Findings()
    for where, what, text in assessment_texts(program):
        check_text(findings, where, what, text)
    rules = {(c.rule.where, c.rule.source): c.rule for c in rule_checks(program, PERSONAS[0])}
    # A rule reading a key the program never fills in has that one problem, reported once.
    misspelt: set[tuple[str, str]] = set()
    for key, rule in rules.items():
        for problem in unknown_keys(rule, program):
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
            check_text(findings, where, "the message", text, f"{who}, {job.usage})")
        for check in rule_checks(program, persona):
            if (check.rule.where, check.rule.source) in misspelt:
                continue
            try:
                check.rule.holds(check.context)
            except RuleError as exc:
                findings.add(("rule", check.rule.where, check.rule.source),
                             f"{exc}{who}){hint(check.rule, check.context, str(exc))}")
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
