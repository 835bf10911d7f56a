"""How quickly people answered participants who needed one: per ISO week and per staff member,
crisis apart from everything else. Pure functions over conversation rows.

Time to first reply runs from when a conversation opened to the first reply by a person; time
to resolution from when it opened to when a person resolved it. A conversation is late when its
first reply came after the time it was due (target_at), or when that time passed while nobody
had replied (still open, or resolved without a reply).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.clock import now

WEEKS = 12


class ConversationRow(Protocol):
    """What the report reads of a conversation (bot.store.support.Conversation has it)."""

    opened_at: datetime
    severity: int
    reason: str
    target_at: datetime | None
    assigned_to: int | None
    first_reply_at: datetime | None
    first_reply_by: int | None
    resolved_at: datetime | None
    resolved_by: int | None


@dataclass(frozen=True)
class Figures:
    """One group of conversations, summed up."""

    opened: int = 0
    answered: int = 0
    median_reply: timedelta | None = None
    p90_reply: timedelta | None = None
    resolved: int = 0
    median_resolution: timedelta | None = None
    late: int = 0


@dataclass(frozen=True)
class WeekRow:
    start: date  # the Monday
    label: str  # "2026-W10"
    current: bool  # the week still running
    figures: Figures

    @property
    def end(self) -> date:
        """The Sunday."""
        return self.start + timedelta(days=6)


@dataclass(frozen=True)
class StaffRow:
    """What one person did: `opened` counts conversations assigned to them, `answered` the
    first replies they gave, `late` those of their first replies that came after the target."""

    staff_id: int
    name: str
    figures: Figures


@dataclass(frozen=True)
class Section:
    key: str  # crisis, other
    title: str
    weeks: list[WeekRow]  # newest first
    total: Figures
    staff: list[StaffRow]


@dataclass(frozen=True)
class Report:
    since: datetime  # the first Monday's midnight, in the zone
    moment: datetime
    zone: ZoneInfo
    sections: list[Section] = field(default_factory=list)


def is_crisis(row: ConversationRow) -> bool:
    return row.severity == 0 or row.reason == "crisis"


def percentile(values: list[timedelta], share: float) -> timedelta | None:
    """The nearest-rank percentile: the smallest value at least `share` of them do not exceed."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def median(values: list[timedelta]) -> timedelta | None:
    if not values:
        return None
    return timedelta(seconds=statistics.median(v.total_seconds() for v in values))


def is_late(row: ConversationRow, moment: datetime) -> bool:
    if row.target_at is None:
        return False
    if row.first_reply_at is not None:
        return row.first_reply_at > row.target_at
    ended = row.resolved_at or moment
    return ended > row.target_at


def figures(rows: Iterable[ConversationRow], moment: datetime) -> Figures:
    rows = list(rows)
    replies = [r.first_reply_at - r.opened_at for r in rows if r.first_reply_at is not None]
    resolutions = [r.resolved_at - r.opened_at for r in rows if r.resolved_at is not None]
    return Figures(
        opened=len(rows), answered=len(replies), median_reply=median(replies),
        p90_reply=percentile(replies, 0.9), resolved=len(resolutions),
        median_resolution=median(resolutions),
        late=sum(1 for r in rows if is_late(r, moment)),
    )


def week_start(moment: datetime, zone: ZoneInfo) -> date:
    """The Monday of the ISO week `moment` falls in, in `zone`."""
    local = moment.astimezone(zone).date()
    return local - timedelta(days=local.weekday())


def week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def window_start(moment: datetime, zone: ZoneInfo, weeks: int = WEEKS) -> datetime:
    """Midnight on the Monday `weeks - 1` weeks before this week's, in `zone`."""
    first = week_start(moment, zone) - timedelta(weeks=weeks - 1)
    return datetime.combine(first, time(0), zone)


def staff_figures(rows: list[ConversationRow], names: Mapping[int, str],
                  moment: datetime) -> list[StaffRow]:
    """One row per person who was assigned, replied first or resolved; busiest first."""
    people = {r.assigned_to for r in rows} | {r.first_reply_by for r in rows} | {
        r.resolved_by for r in rows}
    found = []
    for person in people - {None}:
        assert person is not None
        answered = [r for r in rows if r.first_reply_by == person and r.first_reply_at]
        resolved = [r for r in rows if r.resolved_by == person and r.resolved_at]
        replies = [r.first_reply_at - r.opened_at for r in answered if r.first_reply_at]
        resolutions = [r.resolved_at - r.opened_at for r in resolved if r.resolved_at]
        found.append(StaffRow(person, names.get(person, f"staff {person}"), Figures(
            opened=sum(1 for r in rows if r.assigned_to == person), answered=len(answered),
            median_reply=median(replies), p90_reply=percentile(replies, 0.9),
            resolved=len(resolved), median_resolution=median(resolutions),
            late=sum(1 for r in answered if is_late(r, moment)),
        )))
    return sorted(found, key=lambda s: (-s.figures.answered, -s.figures.resolved, s.name))


def section(key: str, title: str, rows: list[ConversationRow], names: Mapping[int, str],
            zone: ZoneInfo, moment: datetime, weeks: int) -> Section:
    this_week = week_start(moment, zone)
    mondays = [this_week - timedelta(weeks=back) for back in range(weeks)]
    by_week: dict[date, list[ConversationRow]] = {monday: [] for monday in mondays}
    for row in rows:
        by_week.setdefault(week_start(row.opened_at, zone), []).append(row)
    return Section(
        key=key, title=title,
        weeks=[WeekRow(m, week_label(m), m == this_week, figures(by_week[m], moment))
               for m in mondays],
        total=figures(rows, moment), staff=staff_figures(rows, names, moment),
    )


def report(rows: Iterable[ConversationRow], *, zone: ZoneInfo, names: Mapping[int, str],
           moment: datetime | None = None, weeks: int = WEEKS) -> Report:
    """The last `weeks` ISO weeks (this one included) of conversations opened in them."""
    moment = moment or now()
    since = window_start(moment, zone, weeks)
    kept = [r for r in rows if since <= r.opened_at <= moment]
    crisis = [r for r in kept if is_crisis(r)]
    other = [r for r in kept if not is_crisis(r)]
    return Report(since=since, moment=moment, zone=zone, sections=[
        section("crisis", "Crisis", crisis, names, zone, moment, weeks),
        section("other", "Everything else", other, names, zone, moment, weeks),
    ])


def duration_words(span: timedelta | None) -> str:
    """"45 s", "12 min", "3 h 05 min", "2 d 4 h"; a dash for no value."""
    if span is None:
        return "—"
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
