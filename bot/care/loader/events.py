"""`events:` of the program or of a micro intervention: each event's goal, timing, rules."""

from __future__ import annotations

from datetime import time
from typing import Any

from bot.care.loader.assessment import assessment_of
from bot.care.loader.fields import Fields, anchored, clock, number, window
from bot.care.loader.source import LineDict
from bot.care.program import ANCHORS, GOAL_TYPES, KEY_PATTERN, EventSpec

Timing = tuple[time | None, tuple[time, time] | None, str | None, int]  # at, window, attr, offset


def events_of(
    fields: Fields, parent: LineDict, scope: str, attributes: dict[str, str]
) -> tuple[EventSpec, ...]:
    """The events under `parent`; `scope` is the micro intervention's key, "" for the program."""
    raw_events = parent.get("events", [])
    if not isinstance(raw_events, list):
        fields.add(f"{fields.at(parent, 'events')}: 'events' should be a list")
        return ()
    found: list[EventSpec] = []
    for raw in raw_events:
        event = event_of(fields, raw, parent, scope, attributes)
        if event is None:
            continue
        if any(e.key == event.key for e in found):
            fields.add(f"{fields.where}:{event.line}: event '{event.key}' is defined twice")
        found.append(event)
    _check_references(fields, found, scope)
    if found and all(e.alternative for e in found):
        fields.add(f"{fields.at(parent, 'events')}: every event is an alternative; "
                   f"at least one must be planned")
    return tuple(found)


def _check_references(fields: Fields, found: list[EventSpec], scope: str) -> None:
    """`otherwise` and `randomize` name events of the same list; `otherwise` needs `when`."""
    keys = {e.key for e in found}
    for event in found:
        refs = [("otherwise", event.otherwise)] + [
            ("randomize", option) for option, _ in event.randomize if option != "skip"
        ]
        for field_name, ref in refs:
            if ref and ref not in keys:
                fields.add(
                    f"{fields.where}:{event.line}: {field_name} names event '{ref}', which is not "
                    f"an event of {scope or 'this program'}"
                )
        if event.otherwise and event.when is None:
            fields.add(f"{fields.where}:{event.line}: 'otherwise' needs a 'when' rule")


def event_of(
    fields: Fields, raw: Any, parent: LineDict, scope: str, attributes: dict[str, str]
) -> EventSpec | None:
    if not isinstance(raw, LineDict):
        fields.add(
            f"{fields.at(parent, 'events')}: each event should be a set of 'key: value' lines"
        )
        return None
    key = fields.text(raw, "key")
    if key and not KEY_PATTERN.match(key):
        fields.add(
            f"{fields.at(raw, 'key')}: event key '{key}' should be one word (a-z, 0-9, _, -)"
        )
    goal = fields.text(raw, "goal")
    if goal and goal not in GOAL_TYPES:
        fields.add(
            f"{fields.at(raw, 'goal')}: goal '{goal}' is not one of: {', '.join(GOAL_TYPES)}"
        )
    alternative = raw.get("alternative", False) is True
    anchor = _anchor(fields, raw, scope)
    at, between, attribute, offset = _timing(fields, raw, key, alternative, attributes)
    start_day = _start_day(fields, raw)
    randomize = _randomize(fields, raw, key)
    return EventSpec(
        key=key,
        goal=goal,
        template=fields.template(raw, "template"),
        at=at or (between[0] if between else time(12, 0)),
        start_day=start_day,
        every_days=fields.whole(raw, "every_days", 1, 1) or 1,
        times=fields.whole(raw, "times", 1, 1) or 1,
        assessment=assessment_of(fields, raw),
        anchor=anchor,
        window=between,
        attribute=attribute,
        offset_minutes=offset,
        when=fields.rule(raw, "when"),
        otherwise=fields.text(raw, "otherwise", required=False) or None,
        randomize=randomize,
        alternative=alternative,
        line=raw.line,
    )


def _anchor(fields: Fields, raw: LineDict, scope: str) -> str:
    """What the event's days count from: its micro intervention's start only inside one."""
    anchor = str(raw.get("from", "start" if scope else "enrollment"))
    if anchor not in ANCHORS or (not scope and anchor == "start"):
        allowed = ANCHORS if scope else ("enrollment", "previous")
        fields.add(f"{fields.at(raw, 'from')}: 'from' should be one of: {', '.join(allowed)}")
        return "enrollment"
    return anchor


def _timing(
    fields: Fields, raw: LineDict, key: str, alternative: bool, attributes: dict[str, str]
) -> Timing:
    """When in the day: a `window`, or `at` a local time or an attribute's time and offset."""
    if raw.get("window") is not None:
        between = window(raw["window"])
        if between is None:
            fields.add(
                f"{fields.at(raw, 'window')}: 'window' should be two local times like "
                f"\"18:00-20:00\", the first earlier"
            )
        return None, between, None, 0
    if raw.get("at") is not None:
        return _at(fields, raw, attributes)
    if not alternative:
        fields.add(f"{fields.at(raw)}: event '{key}' needs 'at' (a local time) or 'window'")
    return None, None, None, 0


def _at(fields: Fields, raw: LineDict, attributes: dict[str, str]) -> Timing:
    if (at := clock(raw["at"])) is not None:
        return at, None, None, 0
    found = anchored(raw["at"])
    if found is None or found[0] not in attributes:
        fields.add(
            f"{fields.at(raw, 'at')}: 'at' should be a local time like 10:00 or an "
            f"attribute with a time, like \"wake_time + 0:30\""
            + (f" (attributes: {', '.join(attributes)})" if attributes else "")
        )
        return None, None, None, 0
    attribute, offset = found
    at = clock(attributes[attribute])
    if at is None:
        fields.add(
            f"{fields.at(raw, 'at')}: attribute '{attribute}' needs a default time "
            f"like 07:00 under 'attributes'"
        )
    return at, None, attribute, offset


def _start_day(fields: Fields, raw: LineDict) -> int:
    day = fields.whole(raw, "day", None, 0)
    start_day = fields.whole(raw, "start_day", None, 0)
    if day is not None and start_day is not None:
        fields.add(f"{fields.at(raw, 'start_day')}: give 'day' or 'start_day', not both")
    return day if day is not None else (start_day or 0)


def _randomize(fields: Fields, raw: LineDict, key: str) -> tuple[tuple[str, float], ...]:
    """A micro-randomized decision: (event key or "skip", probability) options."""
    if (raw_random := raw.get("randomize")) is None:
        return ()
    if isinstance(raw_random, LineDict) and "probability" in raw_random:
        p = number(raw_random["probability"])
        if p is None or not 0 < p < 1:
            fields.add(
                f"{fields.at(raw_random, 'probability')}: 'probability' should be a number "
                f"between 0 and 1, like 0.5"
            )
            return ()
        return tuple({key: p, "skip": 1 - p}.items())
    if isinstance(raw_random, LineDict) and isinstance(raw_random.get("choose"), LineDict):
        return _choose(fields, raw_random)
    fields.add(
        f"{fields.at(raw, 'randomize')}: randomize needs 'probability: 0.5' or "
        f"'choose: {{event: 0.5, other_event: 0.5}}'"
    )
    return ()


def _choose(fields: Fields, raw_random: LineDict) -> tuple[tuple[str, float], ...]:
    choose = raw_random["choose"]
    options: dict[str, float] = {}
    for option, p in choose.items():
        value = number(p)
        if value is None or not 0 < value <= 1:
            fields.add(
                f"{fields.at(choose, option)}: the probability of '{option}' should be a "
                f"number between 0 and 1"
            )
            continue
        options[str(option)] = value
    total = sum(options.values())
    if options and total > 1 + 1e-9:
        fields.add(
            f"{fields.at(raw_random, 'choose')}: the probabilities add up to {total:g}, "
            f"more than 1"
        )
    elif options and total < 1 - 1e-9:
        options["skip"] = 1 - total
    return tuple(options.items())
