"""`levels:` and `interventions:`: the priority levels and the micro interventions they order."""

from __future__ import annotations

from bot.care.loader.events import events_of
from bot.care.loader.fields import Fields
from bot.care.loader.source import LineDict
from bot.care.program import KEY_PATTERN, OUTCOMES, EventSpec, Intervention, Level, ReEngage
from bot.care.rules import Rule, compile_rule


def levels_of(
    fields: Fields, data: LineDict, raw_interventions: LineDict
) -> tuple[list[Level], dict[str, str]]:
    """The levels, highest priority first, and the level of each micro intervention."""
    levels: list[Level] = []
    level_of: dict[str, str] = {}
    raw_levels = data.get("levels", [])
    if not isinstance(raw_levels, list):
        fields.add(
            f"{fields.at(data, 'levels')}: 'levels' should be a list, highest priority first"
        )
        raw_levels = []
    for raw in raw_levels:
        if not isinstance(raw, LineDict):
            fields.add(
                f"{fields.at(data, 'levels')}: each level should be a set of 'key: value' lines"
            )
            continue
        levels.append(_level(fields, raw, raw_interventions, level_of))
    return levels, level_of


def _level(
    fields: Fields, raw: LineDict, raw_interventions: LineDict, level_of: dict[str, str]
) -> Level:
    key = fields.text(raw, "key")
    names = raw.get("interventions", [])
    if not isinstance(names, list) or not names:
        fields.add(f"{fields.at(raw, 'interventions')}: level '{key}' needs a list of "
                   f"interventions")
        names = []
    for name in names:
        if str(name) not in raw_interventions:
            fields.add(f"{fields.at(raw, 'interventions')}: intervention '{name}' is not "
                       f"defined under 'interventions'")
        elif str(name) in level_of:
            fields.add(f"{fields.at(raw, 'interventions')}: intervention '{name}' is already "
                       f"in level '{level_of[str(name)]}'")
        else:
            level_of[str(name)] = key
    return Level(
        key=key, title=fields.text(raw, "title"),
        rationale=fields.text(raw, "rationale", required=False),
        need=fields.rule(raw, "need"), interventions=tuple(str(n) for n in names),
    )


def interventions_of(
    fields: Fields, raw_interventions: LineDict, level_of: dict[str, str],
    attributes: dict[str, str],
) -> list[Intervention]:
    found = []
    for name, raw in raw_interventions.items():
        line = f"{fields.where}:{raw_interventions.key_lines.get(name, 1)}"
        if not isinstance(raw, LineDict):
            fields.add(f"{line}: intervention '{name}' should be a set of 'key: value' lines")
            continue
        found.append(_intervention(fields, str(name), raw, line, level_of, attributes))
    return found


def _intervention(
    fields: Fields, name: str, raw: LineDict, line: str, level_of: dict[str, str],
    attributes: dict[str, str],
) -> Intervention:
    if not KEY_PATTERN.match(name):
        fields.add(f"{line}: intervention '{name}' should be one word (a-z, 0-9, _, -)")
    if name not in level_of:
        fields.add(f"{line}: intervention '{name}' is in no level (add it to a level's "
                   f"interventions)")
    events = events_of(fields, raw, name, attributes)
    if "events" not in raw:
        fields.add(f"{line}: intervention '{name}' needs events")
    outcome = _outcome(fields, raw, name)
    re_engage = _re_engage(fields, raw, name, events)
    return Intervention(
        key=name, title=fields.text(raw, "title"), rationale=fields.text(raw, "rationale"),
        level=level_of.get(name, ""), events=events, outcome=outcome,
        end_early=fields.rule(raw, "end_early"), re_engage=re_engage, line=raw.line,
    )


def _outcome(fields: Fields, raw: LineDict, name: str) -> tuple[tuple[str, Rule], ...]:
    """(outcome, rule) in the file's order, "disengaged" (nothing answered) unless given."""
    outcome: list[tuple[str, Rule]] = []
    if (raw_outcome := fields.mapping_of(raw.get("outcome"), fields.at(raw, "outcome"),
                                         "outcome")):
        for result in raw_outcome:
            if result not in OUTCOMES:
                fields.add(f"{fields.at(raw_outcome, result)}: outcome '{result}' should be one "
                           f"of: {', '.join(OUTCOMES)}")
            elif (compiled := fields.rule(raw_outcome, result)) is not None:
                outcome.append((str(result), compiled))
    else:
        fields.add(f"{fields.at(raw)}: intervention '{name}' needs an 'outcome' with an "
                   f"'achieved' rule")
    if outcome and "achieved" not in dict(outcome):
        fields.add(f"{fields.at(raw, 'outcome')}: the outcome needs an 'achieved' rule")
    if "disengaged" not in dict(outcome):
        outcome.append(("disengaged", compile_rule("answered == 0", fields.at(raw))))
    return tuple(outcome)


def _re_engage(
    fields: Fields, raw: LineDict, name: str, events: tuple[EventSpec, ...]
) -> ReEngage | None:
    raw_re = fields.mapping_of(raw.get("re_engage"), fields.at(raw, "re_engage"), "re_engage")
    if not raw_re:
        return None
    event_key = fields.text(raw_re, "event")
    if event_key and not any(e.key == event_key for e in events):
        fields.add(f"{fields.at(raw_re, 'event')}: re_engage names event '{event_key}', "
                   f"which is not an event of {name}")
    return ReEngage(
        after_unanswered=fields.whole(raw_re, "after_unanswered", 2, 1) or 2,
        event=event_key,
        per_week=fields.whole(raw_re, "per_week", 1, 0) or 0,
    )
