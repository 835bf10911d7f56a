"""A simulation's summary as a terminal shows it, and as one line of JSON."""

from __future__ import annotations

import json

from bot.tools.personas import PERSONAS
from bot.tools.simulate.report import Summary


def format_summary(summary: Summary) -> list[str]:
    """The summary as lines for a terminal."""
    f = summary.figures

    def row(label: str, value: object, note: str = "") -> str:
        return f"  {label:<24}{value:>8}" + (f"  ({note})" if note else "")

    lines = [
        f"Summary: {f['participants']} participant(s) in {f['program']}, {f['days']} days "
        f"from {f['start']} (persona {f['persona']}, seed {f['seed']})",
        row("messages sent", f["messages"], f"{f['scheduled_messages']} scheduled, "
            f"{f['webhook_replies']} replies to texts, {f['undelivered']} undelivered"),
        row("texts from participants", f["texts"]),
        row("questions asked", f["questions"],
            f"{f['answers']} answered, {f['missing']} recorded missing"),
        row("sends in quiet hours", f["quiet_hour_sends"], "must be 0"),
        row("messages after STOP", f["after_stop"],
            f"besides the confirmation; must be 0; {f['opted_out']} opted out"),
        row("errors", f["errors"]),
        *_persona_lines(summary),
        *_outcome_lines(summary),
        *_randomization_lines(summary),
        f"  wall time {f['wall_seconds']:.1f} s: {f['simulated_days_per_second']:.1f} simulated "
        f"days/s, {f['participant_days_per_second']:.0f} participant-days/s, "
        f"{f['messages_per_second']:.0f} messages/s ({f['steps']} clock steps)",
        *_part_lines(summary),
    ]
    return lines


def _part_lines(summary: Summary) -> list[str]:
    """Where the wall time went, part by part, the largest first."""
    parts = summary.figures.get("parts") or {}
    if not parts:
        return []
    wall = max(summary.figures["wall_seconds"], 1e-9)
    messages = max(summary.figures["messages"], 1)
    lines = ["  where the time went (share of wall time; SQL statements per message sent):"]
    for name, part in sorted(parts.items(), key=lambda item: -item[1]["seconds"]):
        statements = part.get("statements")
        counted = (f", {statements / messages:5.1f} statements/message" if statements is not None
                   else "")
        lines.append(f"    {name:<40} {part['seconds']:8.1f} s {100 * part['seconds'] / wall:4.0f}%"
                     f"{counted}")
    return lines


def _persona_lines(summary: Summary) -> list[str]:
    if summary.figures["participants"] <= 1:
        return []
    columns = ("people", "texts", "questions", "answered", "opted out")
    lines = [f"  {'by persona':<24}" + "".join(f"{c:>11}" for c in columns)]
    for name in [n for n in PERSONAS if n in summary.by_persona]:
        c = summary.by_persona[name]
        rate = c.get("answers", 0) / c["questions"] if c.get("questions") else 0.0
        values = (c["participants"], c.get("texts", 0), c.get("questions", 0),
                  f"{rate:.0%}", c.get("opted out", 0))
        lines.append(f"    {name:<22}" + "".join(f"{v:>11}" for v in values))
    return lines


def _outcome_lines(summary: Summary) -> list[str]:
    if not summary.outcomes:
        return [f"  {'micro interventions':<24}none ran"]
    kinds = ("achieved", "not achieved", "disengaged", "running")
    lines = [f"  {'micro interventions':<24}" + "".join(f"{k:>14}" for k in kinds)]
    for intervention in sorted(summary.outcomes):
        counts = summary.outcomes[intervention]
        lines.append(f"    {intervention:<22}" + "".join(f"{counts.get(k, 0):>14}" for k in kinds))
    return lines


def _randomization_lines(summary: Summary) -> list[str]:
    if not summary.randomization:
        return [f"  {'randomization':<24}no randomized decision points"]
    lines = [f"  {'randomization':<24}{'drawn':>14}{'observed':>10}{'declared':>10}"]
    decision = None
    for drawn in summary.randomization:
        if drawn["decision"] != decision:
            decision = drawn["decision"]
            lines.append(f"    {decision}")
        lines.append(
            f"      {drawn['choice']:<20}{drawn['n']:>7} / {drawn['of']:<4}"
            f"{drawn['observed']:>10.3f}{drawn['declared']:>10.3f}"
        )
    return lines


def figures_json(summary: Summary) -> str:
    """One JSON line: the figures, interventions' outcomes and randomization frequencies."""
    return json.dumps(
        {**summary.figures, "outcomes": summary.outcomes, "randomization": summary.randomization}
    )
