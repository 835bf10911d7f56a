"""Typed fields out of program.yaml's mappings, every problem kept with its file:line."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Any

from bot.care.loader.source import LineDict
from bot.care.rules import Rule, RuleError, compile_rule


class Fields:
    """One program file being read: each reader returns a usable value (or a default) and notes
    what is wrong, so a coordinator sees every problem at once rather than the first."""

    def __init__(self, folder: Path, where: str):
        self.folder = folder
        self.where = where  # "daily-checkin/program.yaml"
        self.problems: list[str] = []

    def add(self, problem: str) -> None:
        self.problems.append(problem)

    def at(self, mapping: LineDict, key: str | None = None) -> str:
        """file:line of `key` in `mapping`, or of the mapping itself."""
        line = mapping.key_lines.get(key, mapping.line) if key else mapping.line
        return f"{self.where}:{line}"

    def text(self, mapping: LineDict, key: str, required: bool = True, default: str = "") -> str:
        value = mapping.get(key)
        if value is None:
            if required:
                self.add(f"{self.at(mapping)}: '{key}' is missing")
            return default
        if not isinstance(value, str | int | float):
            self.add(f"{self.at(mapping, key)}: '{key}' should be text")
            return default
        return str(value).strip()

    def template(self, mapping: LineDict, key: str, required: bool = True) -> str:
        name = self.text(mapping, key, required=required)
        if name and not (self.folder / name).is_file():
            self.add(
                f"{self.at(mapping, key)}: template '{name}' does not exist in {self.folder.name}/"
            )
        return name

    def whole(self, mapping: LineDict, key: str, default: int | None, minimum: int) -> int | None:
        value = mapping.get(key, default)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.add(f"{self.at(mapping, key)}: '{key}' should be a whole number >= {minimum}")
            return default
        return value

    def rule(self, mapping: LineDict, key: str) -> Rule | None:
        if mapping.get(key) is None:
            return None
        try:
            return compile_rule(mapping[key], self.at(mapping, key))
        except RuleError as exc:
            self.add(str(exc))
            return None

    def mapping_of(self, value: Any, where: str, what: str) -> LineDict | None:
        if value is None:
            return None
        if not isinstance(value, LineDict):
            self.add(f"{where}: {what} should be a set of 'key: value' lines")
            return None
        return value


def clock(text: Any) -> time | None:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", str(text).strip())
    return time(int(match.group(1)), int(match.group(2))) if match else None


def window(text: Any) -> tuple[time, time] | None:
    match = re.fullmatch(r"\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*", str(text))
    if not match:
        return None
    start, end = clock(match.group(1)), clock(match.group(2))
    return (start, end) if start and end and start < end else None


def anchored(text: Any) -> tuple[str, int] | None:
    """'wake_time', 'wake_time + 0:30', 'dose_time - 0:15' -> (attribute, minutes)."""
    match = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:([+-])\s*(\d{1,2}):([0-5]\d))?\s*",
                         str(text))
    if not match:
        return None
    minutes = int(match.group(3) or 0) * 60 + int(match.group(4) or 0)
    return match.group(1), -minutes if match.group(2) == "-" else minutes


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
