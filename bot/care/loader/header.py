"""The program's own settings at the top of program.yaml: attributes, join keywords, limits."""

from __future__ import annotations

import re
from datetime import time

from bot.care.loader.fields import Fields, clock
from bot.care.loader.source import LineDict


def attributes_of(fields: Fields, data: LineDict) -> dict[str, str]:
    """`attributes:` each participant has (a wake time, a dose time), with their defaults."""
    attributes: dict[str, str] = {}
    raw_attrs = fields.mapping_of(data.get("attributes"), fields.at(data, "attributes"),
                                  "attributes")
    if not raw_attrs:
        return attributes
    for name, value in raw_attrs.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)):
            fields.add(
                f"{fields.at(raw_attrs, name)}: attribute '{name}' should be one word "
                f"(letters, digits, _)"
            )
            continue
        attributes[str(name)] = str(value).strip()
    return attributes


def join_keywords_of(fields: Fields, data: LineDict) -> tuple[str, ...]:
    """The words a person texts to join, upper case."""
    keywords = data.get("join_keywords", [])
    if isinstance(keywords, str):
        keywords = [keywords]
    if not isinstance(keywords, list) or not all(
        isinstance(k, str) and re.fullmatch(r"[A-Za-z0-9]+", k.strip()) for k in keywords
    ):
        fields.add(
            f"{fields.at(data, 'join_keywords')}: join_keywords must be a list of single words"
        )
        keywords = []
    return tuple(k.strip().upper() for k in keywords)


def quiet_hours_of(fields: Fields, data: LineDict) -> tuple[time, time] | None:
    """`quiet_hours:` (start, end) local times; None: the service default."""
    if (raw_quiet := data.get("quiet_hours")) is None:
        return None
    start = clock(raw_quiet.get("start")) if isinstance(raw_quiet, dict) else None
    end = clock(raw_quiet.get("end")) if isinstance(raw_quiet, dict) else None
    if start is None or end is None:
        fields.add(
            f"{fields.at(data, 'quiet_hours')}: quiet_hours needs 'start' and 'end' like 21:00"
        )
        return None
    return start, end


def daily_cap_of(fields: Fields, data: LineDict) -> int | None:
    """`daily_cap:` the most messages a participant gets a day; None: the service default."""
    daily_cap = data.get("daily_cap")
    if daily_cap is not None and (not isinstance(daily_cap, int) or daily_cap < 1):
        fields.add(f"{fields.at(data, 'daily_cap')}: daily_cap should be a whole number >= 1")
        return None
    return daily_cap
