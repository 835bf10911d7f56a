"""Weekly hours, such as when a person staffs a study ("Mon-Fri 09:00-17:00, Sat 10:00-14:00"):
read strictly, whether a moment falls inside them, and when they next open."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SPAN = re.compile(r"([a-z]+)(?:\s*-\s*([a-z]+))?\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})")
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


class HoursError(ValueError):
    """Hours that cannot be read; the message (after the setting's name) says how to write them."""


@dataclass(frozen=True)
class Span:
    """Weekdays (0 is Monday) and the hours of each; an end at or before the start runs past
    midnight (09:00-24:00 ends at midnight)."""

    days: tuple[int, ...]
    start: time
    end: time

    def window(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The span's hours that begin on `day`, in UTC."""
        until = day if self.end > self.start else day + timedelta(days=1)
        return (
            datetime.combine(day, self.start, tzinfo=zone).astimezone(UTC),
            datetime.combine(until, self.end, tzinfo=zone).astimezone(UTC),
        )


@dataclass(frozen=True)
class WeeklyHours:
    spans: tuple[Span, ...]
    text: str  # as written

    def _windows(self, moment: datetime, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
        """Every window from the day before `moment` to a week after it, earliest first."""
        today = moment.astimezone(zone).date()
        days = [today + timedelta(days=offset) for offset in range(-1, 8)]
        return sorted(
            span.window(day, zone) for day in days for span in self.spans
            if day.weekday() in span.days
        )

    def is_open(self, moment: datetime, zone: ZoneInfo) -> bool:
        return any(start <= moment < end for start, end in self._windows(moment, zone))

    def after_open_time(self, moment: datetime, duration: timedelta, zone: ZoneInfo) -> datetime:
        """The moment `duration` of these hours has passed since `moment`: a reply due within
        8 staffed hours of Friday 16:00, with Mon-Fri 09:00-17:00, is due Monday 16:00."""
        left, start = duration, moment
        while True:
            windows = [(max(s, start), e) for s, e in self._windows(start, zone) if e > start]
            for opens, closes in windows:
                if closes - opens >= left:
                    return (opens + left).astimezone(zone)
                left -= closes - opens
            start = windows[-1][1] if windows else start + timedelta(days=7)

    def next_opening(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """The next moment after `moment` the hours begin, in `zone`."""
        return next(s for s, _ in self._windows(moment, zone) if s > moment).astimezone(zone)


def _day(word: str) -> int:
    found = [i for i, day in enumerate(WEEKDAYS) if len(word) >= 3 and day.startswith(word)]
    if not found:
        raise HoursError(f"must name days of the week (Mon, Tue, ... Sun), not {word!r}")
    return found[0]


def _clock(raw: str) -> time:
    if raw == "24:00":
        return time(0, 0)
    if not (match := _CLOCK.fullmatch(raw)):
        raise HoursError(f"must give times like 09:00 or 17:30, not {raw!r}")
    return time(int(match.group(1)), int(match.group(2)))


def parse_hours(raw: str) -> WeeklyHours:
    """`Mon-Fri 09:00-17:00, Sat 10:00-14:00` as weekly hours, or HoursError saying why not."""
    shape = "must be days and hours like 'Mon-Fri 09:00-17:00' (several: comma-separated)"
    spans = []
    for part in (p.strip() for p in raw.split(",")):
        if not (match := _SPAN.fullmatch(part.lower())):
            raise HoursError(f"{shape}, not {part!r}")
        first, last = _day(match.group(1)), _day(match.group(2) or match.group(1))
        start, end = _clock(match.group(3)), _clock(match.group(4))
        if start == end and match.group(4) != "24:00":
            raise HoursError(f"has {part!r}, which starts and ends at the same time")
        days = tuple((first + i) % 7 for i in range((last - first) % 7 + 1))
        spans.append(Span(days, start, end))
    return WeeklyHours(tuple(spans), raw.strip())
