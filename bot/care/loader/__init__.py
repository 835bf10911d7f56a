"""Reading a program folder into the typed model of bot.care.program, one parser per section
of program.yaml: the header (header), `events` (events, with assessment), `levels` and
`interventions` (interventions), `hub` (hub). Every problem is collected with its file:line
(fields), so a coordinator sees them all at once.
"""

from __future__ import annotations

from pathlib import Path

from bot.care.loader.events import events_of
from bot.care.loader.fields import Fields
from bot.care.loader.header import attributes_of, daily_cap_of, join_keywords_of, quiet_hours_of
from bot.care.loader.hub import hub_of
from bot.care.loader.interventions import interventions_of, levels_of
from bot.care.loader.source import LineDict, read_definition, version
from bot.care.program import EventSpec, Hub, Intervention, Level, Program, ProgramError


def read_program(folder: Path) -> Program:
    """One program folder, read and checked; a ProgramError lists every problem found."""
    where, data = read_definition(folder)
    fields = Fields(folder, where)
    attributes = attributes_of(fields, data)
    title = fields.text(data, "title")
    join_keywords = join_keywords_of(fields, data)
    events = events_of(fields, data, "", attributes)
    raw_interventions = fields.mapping_of(
        data.get("interventions"), fields.at(data, "interventions"), "interventions"
    ) or LineDict()
    levels, level_of = levels_of(fields, data, raw_interventions)
    interventions = interventions_of(fields, raw_interventions, level_of, attributes)
    hub = hub_of(fields, data)
    _check_model(fields, data, events, levels, interventions, hub)
    quiet_hours = quiet_hours_of(fields, data)
    daily_cap = daily_cap_of(fields, data)
    program = Program(
        name=folder.name,
        title=title,
        description=fields.text(data, "description"),
        frequency=fields.text(data, "frequency"),
        contact=fields.text(data, "contact", required=False),
        join_keywords=join_keywords,
        welcome_template=fields.template(data, "welcome"),
        events=events,
        folder=folder,
        version=version(folder),
        quiet_hours=quiet_hours,
        daily_cap=daily_cap,
        keywords_line=data.key_lines.get("join_keywords", data.line),
        attributes=tuple(attributes.items()),
        hub=hub,
        levels=tuple(levels),
        interventions=tuple(interventions),
        duration_days=fields.whole(data, "duration_days", None, 1),
        seed=fields.text(data, "seed", required=False) or folder.name,
    )
    if fields.problems:
        raise ProgramError(fields.problems)
    return program


def _check_model(
    fields: Fields, data: LineDict, events: tuple[EventSpec, ...], levels: list[Level],
    interventions: list[Intervention], hub: Hub | None,
) -> None:
    """The sections fit together: levels need the hub, interventions need levels, and a
    program sends something."""
    if levels and hub is None:
        fields.add(f"{fields.at(data, 'levels')}: a program with levels needs a 'hub' "
                   f"(at least its narrative)")
    if interventions and not levels:
        fields.add(f"{fields.at(data, 'interventions')}: interventions need 'levels' that order "
                   f"them")
    if not events and not levels:
        fields.add(f"{fields.at(data)}: a program needs 'events' or 'levels' with interventions")
