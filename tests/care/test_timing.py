"""Participants' local time: planned wall-clock times and quiet hours hold across DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlmodel import Session, col, select

from bot.care.programs import load_program
from bot.care.timing import (
    TimezoneError,
    in_quiet_hours,
    local_day_bounds,
    local_moment,
    next_allowed,
    zone,
)
from bot.participants.enrollment import enroll
from bot.store.models import Delivery, Participant

ROOT = Path(__file__).resolve().parents[2]
NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
AUCKLAND = ZoneInfo("Pacific/Auckland")
QUIET = (time(21, 0), time(8, 0))  # the service default


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz: ZoneInfo, *args: int) -> datetime:
    """A wall-clock time in `tz` as UTC (first occurrence if it repeats)."""
    return datetime(*args, tzinfo=tz).astimezone(UTC)


@pytest.mark.parametrize(
    ("day", "clock", "tz", "expected"),
    [
        # Ordinary days: wall time in the zone, stored as UTC.
        (date(2026, 1, 15), time(10, 0), NEW_YORK, utc(2026, 1, 15, 15, 0)),
        (date(2026, 7, 15), time(10, 0), NEW_YORK, utc(2026, 7, 15, 14, 0)),
        (date(2026, 7, 15), time(10, 0), LONDON, utc(2026, 7, 15, 9, 0)),
        (date(2026, 7, 15), time(10, 0), AUCKLAND, utc(2026, 7, 14, 22, 0)),
        # Spring forward: a skipped wall time lands just past the gap (02:30 reads as 03:30).
        (date(2026, 3, 8), time(2, 30), NEW_YORK, utc(2026, 3, 8, 7, 30)),
        (date(2026, 3, 29), time(1, 30), LONDON, utc(2026, 3, 29, 1, 30)),
        (date(2026, 9, 27), time(2, 30), AUCKLAND, utc(2026, 9, 26, 14, 30)),
        # Fall back: a repeated wall time is its first occurrence.
        (date(2026, 11, 1), time(1, 30), NEW_YORK, utc(2026, 11, 1, 5, 30)),
        (date(2026, 10, 25), time(1, 30), LONDON, utc(2026, 10, 25, 0, 30)),
        (date(2026, 4, 5), time(2, 30), AUCKLAND, utc(2026, 4, 4, 13, 30)),
    ],
)
def test_a_wall_clock_time_maps_to_one_utc_moment(
    day: date, clock: time, tz: ZoneInfo, expected: datetime
) -> None:
    assert local_moment(day, clock, tz) == expected


@pytest.mark.parametrize(
    ("day", "tz", "wall"),
    [
        (date(2026, 3, 8), NEW_YORK, time(3, 30)),
        (date(2026, 3, 29), LONDON, time(2, 30)),
        (date(2026, 9, 27), AUCKLAND, time(3, 30)),
    ],
)
def test_a_time_skipped_by_spring_forward_is_read_an_hour_later_on_the_clock(
    day: date, tz: ZoneInfo, wall: time
) -> None:
    skipped = time(wall.hour - 1, wall.minute)
    moment = local_moment(day, skipped, tz).astimezone(tz)
    assert (moment.date(), moment.time()) == (day, wall)


@pytest.mark.parametrize(
    ("moment", "tz", "quiet"),
    [
        # New York, winter.
        (local(NEW_YORK, 2026, 1, 15, 20, 59), NEW_YORK, False),
        (local(NEW_YORK, 2026, 1, 15, 21, 0), NEW_YORK, True),  # the start is quiet
        (local(NEW_YORK, 2026, 1, 15, 23, 30), NEW_YORK, True),
        (local(NEW_YORK, 2026, 1, 16, 0, 30), NEW_YORK, True),  # after midnight
        (local(NEW_YORK, 2026, 1, 16, 7, 59), NEW_YORK, True),
        (local(NEW_YORK, 2026, 1, 16, 8, 0), NEW_YORK, False),  # the end is not
        (local(NEW_YORK, 2026, 1, 16, 12, 0), NEW_YORK, False),
        # The nights of both DST changes, in both zones.
        (local(NEW_YORK, 2026, 3, 8, 3, 30), NEW_YORK, True),
        (local(NEW_YORK, 2026, 3, 8, 8, 0), NEW_YORK, False),
        (utc(2026, 11, 1, 6, 30), NEW_YORK, True),  # the second 01:30
        (local(NEW_YORK, 2026, 11, 1, 8, 0), NEW_YORK, False),
        (local(LONDON, 2026, 3, 29, 2, 30), LONDON, True),
        (local(LONDON, 2026, 3, 29, 8, 0), LONDON, False),
        (utc(2026, 10, 25, 1, 30), LONDON, True),  # the second 01:30
        (local(LONDON, 2026, 10, 25, 7, 59), LONDON, True),
        # Auckland, whose seasons are the other way round.
        (local(AUCKLAND, 2026, 4, 5, 2, 30), AUCKLAND, True),
        (local(AUCKLAND, 2026, 4, 5, 8, 0), AUCKLAND, False),
        (local(AUCKLAND, 2026, 9, 27, 3, 30), AUCKLAND, True),
        (local(AUCKLAND, 2026, 9, 26, 20, 59), AUCKLAND, False),
    ],
)
def test_quiet_hours_follow_the_participants_clock(
    moment: datetime, tz: ZoneInfo, quiet: bool
) -> None:
    assert in_quiet_hours(moment, tz, *QUIET) is quiet


@pytest.mark.parametrize(
    ("start", "end", "wall", "quiet"),
    [
        # A window inside one day (a school day, say).
        (time(9, 0), time(15, 0), time(8, 59), False),
        (time(9, 0), time(15, 0), time(9, 0), True),
        (time(9, 0), time(15, 0), time(14, 59), True),
        (time(9, 0), time(15, 0), time(15, 0), False),
        (time(9, 0), time(15, 0), time(23, 0), False),
        # start == end: no quiet hours at all.
        (time(21, 0), time(21, 0), time(21, 0), False),
        (time(0, 0), time(0, 0), time(3, 0), False),
    ],
)
def test_other_quiet_windows(start: time, end: time, wall: time, quiet: bool) -> None:
    moment = local(NEW_YORK, 2026, 1, 15, wall.hour, wall.minute)
    assert in_quiet_hours(moment, NEW_YORK, start, end) is quiet
    expected = local(NEW_YORK, 2026, 1, 15, end.hour, end.minute) if quiet else moment
    assert next_allowed(moment, NEW_YORK, start, end) == expected


@pytest.mark.parametrize(
    ("moment", "tz", "allowed"),
    [
        # Outside quiet hours: now.
        (local(NEW_YORK, 2026, 1, 15, 12, 0), NEW_YORK, local(NEW_YORK, 2026, 1, 15, 12, 0)),
        (local(NEW_YORK, 2026, 1, 15, 8, 0), NEW_YORK, local(NEW_YORK, 2026, 1, 15, 8, 0)),
        # In the evening: 08:00 the next morning.
        (local(NEW_YORK, 2026, 1, 15, 21, 0), NEW_YORK, local(NEW_YORK, 2026, 1, 16, 8, 0)),
        (local(NEW_YORK, 2026, 1, 15, 23, 59), NEW_YORK, local(NEW_YORK, 2026, 1, 16, 8, 0)),
        # After midnight: 08:00 the same morning.
        (local(NEW_YORK, 2026, 1, 16, 0, 0), NEW_YORK, local(NEW_YORK, 2026, 1, 16, 8, 0)),
        (local(NEW_YORK, 2026, 1, 16, 7, 59), NEW_YORK, local(NEW_YORK, 2026, 1, 16, 8, 0)),
        # The year's last evening waits for New Year's morning.
        (local(LONDON, 2026, 12, 31, 22, 0), LONDON, local(LONDON, 2027, 1, 1, 8, 0)),
        # Nights of a DST change: 08:00 on the wall clock, whatever the night's length.
        (local(NEW_YORK, 2026, 3, 7, 22, 0), NEW_YORK, utc(2026, 3, 8, 12, 0)),
        (local(NEW_YORK, 2026, 3, 8, 3, 0), NEW_YORK, utc(2026, 3, 8, 12, 0)),
        (local(NEW_YORK, 2026, 10, 31, 22, 0), NEW_YORK, utc(2026, 11, 1, 13, 0)),
        (utc(2026, 11, 1, 6, 30), NEW_YORK, utc(2026, 11, 1, 13, 0)),
        (local(LONDON, 2026, 3, 28, 23, 0), LONDON, utc(2026, 3, 29, 7, 0)),
        (local(LONDON, 2026, 10, 24, 23, 0), LONDON, utc(2026, 10, 25, 8, 0)),
        (utc(2026, 10, 25, 1, 30), LONDON, utc(2026, 10, 25, 8, 0)),
        (local(AUCKLAND, 2026, 4, 4, 22, 0), AUCKLAND, utc(2026, 4, 4, 20, 0)),
        (local(AUCKLAND, 2026, 9, 26, 22, 0), AUCKLAND, utc(2026, 9, 26, 19, 0)),
        (local(AUCKLAND, 2026, 9, 27, 4, 0), AUCKLAND, utc(2026, 9, 26, 19, 0)),
    ],
)
def test_a_message_held_for_quiet_hours_goes_at_the_end_of_them(
    moment: datetime, tz: ZoneInfo, allowed: datetime
) -> None:
    result = next_allowed(moment, tz, *QUIET)
    assert result == allowed
    assert result.tzinfo is not None
    assert not in_quiet_hours(result, tz, *QUIET)


@pytest.mark.parametrize(
    ("moment", "allowed"),
    [
        (utc(2026, 11, 1, 5, 0), utc(2026, 11, 1, 5, 30)),  # the first 01:00 (EDT)
        (utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 6, 30)),  # the second 01:00 (EST)
    ],
)
def test_a_quiet_window_ending_in_the_repeated_hour_never_ends_in_the_past(
    moment: datetime, allowed: datetime
) -> None:
    window = (time(21, 0), time(1, 30))
    assert in_quiet_hours(moment, NEW_YORK, *window)
    assert next_allowed(moment, NEW_YORK, *window) == allowed


def test_next_allowed_accepts_a_naive_utc_moment_as_sqlite_returns_it() -> None:
    naive = datetime(2026, 1, 16, 3, 0)  # 22:00 in New York
    assert next_allowed(naive, NEW_YORK, *QUIET) == local(NEW_YORK, 2026, 1, 16, 8, 0)


@pytest.mark.parametrize(
    ("day", "tz", "hours"),
    [
        (date(2026, 1, 15), NEW_YORK, 24),
        (date(2026, 3, 8), NEW_YORK, 23),
        (date(2026, 11, 1), NEW_YORK, 25),
        (date(2026, 3, 29), LONDON, 23),
        (date(2026, 10, 25), LONDON, 25),
        (date(2026, 9, 27), AUCKLAND, 23),
        (date(2026, 4, 5), AUCKLAND, 25),
    ],
)
def test_a_local_day_is_as_long_as_the_clock_says(day: date, tz: ZoneInfo, hours: int) -> None:
    noon = local(tz, day.year, day.month, day.day, 12, 0)
    start, end = local_day_bounds(noon, tz)
    assert end - start == timedelta(hours=hours)
    assert start.astimezone(tz).replace(tzinfo=None) == datetime.combine(day, time(0, 0))
    assert end.astimezone(tz).date() == day + timedelta(days=1)
    assert start <= noon < end


@pytest.mark.parametrize("name", ["Mars/Base", "", "America", "america/chicago", "CST+6"])
def test_it_refuses_a_name_that_is_not_a_time_zone(name: str) -> None:
    with pytest.raises(TimezoneError, match="is not a time zone"):
        zone(name)


@pytest.mark.parametrize(
    ("enrolled", "tz"),
    [
        (utc(2026, 4, 1, 0, 0), AUCKLAND),  # daylight time ends on 5 April
        (utc(2026, 9, 23, 0, 0), AUCKLAND),  # daylight time starts on 27 September
        (utc(2026, 3, 5, 15, 0), NEW_YORK),
        (utc(2026, 10, 22, 12, 0), LONDON),
    ],
)
def test_planned_events_keep_their_local_time_across_a_dst_change(
    session: Session, enrolled: datetime, tz: ZoneInfo
) -> None:
    program = load_program(ROOT / "narratives" / "daily-checkin")
    with freeze_time(enrolled):
        participant = enroll(
            session=session, phone="+14155550123", program=program, timezone=tz.key, via="cli"
        )
        session.commit()
    events = session.exec(
        select(Delivery)
        .where(Delivery.participant_id == participant.id, Delivery.kind == "event")
        .order_by(col(Delivery.due_at))
    ).all()
    first_day = enrolled.astimezone(tz).date()
    offsets = set()
    for spec in program.events:
        mine = [e for e in events if e.event_key.startswith(f"{spec.key}#")]
        assert len(mine) == spec.times
        for occurrence, delivery in enumerate(mine):
            wall = delivery.due_at.astimezone(tz)
            assert wall.time() == spec.at
            assert wall.date() == first_day + timedelta(days=spec.start_day + occurrence)
            offsets.add(wall.utcoffset())
    assert len(offsets) == 2  # the week did cross the change
    stored = session.get(Participant, participant.id)
    assert stored is not None and stored.timezone == tz.key
