"""Weekly hours as operators write them: read strictly, open or not at a moment, next opening."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.hours import HoursError, Span, parse_hours

NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("raw", "spans"),
    [
        ("Mon-Fri 09:00-17:00", [Span((0, 1, 2, 3, 4), time(9), time(17))]),
        ("mon-fri 9:00 - 17:30, Sat 10:00-14:00",
         [Span((0, 1, 2, 3, 4), time(9), time(17, 30)), Span((5,), time(10), time(14))]),
        ("Friday-Monday 22:00-06:00", [Span((4, 5, 6, 0), time(22), time(6))]),
        ("Sun 00:00-24:00", [Span((6,), time(0), time(0))]),
    ],
)
def test_hours_are_read_as_written(raw: str, spans: list[Span]) -> None:
    assert list(parse_hours(raw).spans) == spans


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("weekdays 9-5", "must be days and hours like 'Mon-Fri 09:00-17:00'"),
        ("Mon-Fri 9am-5pm", "must be days and hours like"),
        ("Mo-Fr 09:00-17:00", "must name days of the week (Mon, Tue, ... Sun), not 'mo'"),
        ("Mon-Fri 09:00-25:00", "must give times like 09:00 or 17:30, not '25:00'"),
        ("Mon 09:00-09:00", "has 'Mon 09:00-09:00', which starts and ends at the same time"),
        ("Mon-Fri 09:00-17:00,", "not ''"),
    ],
)
def test_hours_that_cannot_be_read_say_how_to_write_them(raw: str, message: str) -> None:
    with pytest.raises(HoursError) as caught:
        parse_hours(raw)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (datetime(2026, 6, 5, 13, 0, tzinfo=UTC), True),  # Friday 09:00 in New York
        (datetime(2026, 6, 5, 12, 59, tzinfo=UTC), False),
        (datetime(2026, 6, 5, 21, 0, tzinfo=UTC), False),  # Friday 17:00: closed again
        (datetime(2026, 6, 6, 15, 0, tzinfo=UTC), False),  # Saturday
    ],
)
def test_a_moment_is_inside_the_hours_in_their_zone(moment: datetime, open_: bool) -> None:
    assert parse_hours("Mon-Fri 09:00-17:00").is_open(moment, NEW_YORK) is open_


def test_hours_past_midnight_stay_open_into_the_next_day() -> None:
    nights = parse_hours("Fri-Sat 22:00-06:00")
    assert nights.is_open(datetime(2026, 6, 6, 9, 0, tzinfo=UTC), NEW_YORK)  # Sat 05:00
    assert not nights.is_open(datetime(2026, 6, 6, 11, 0, tzinfo=UTC), NEW_YORK)  # Sat 07:00
    assert nights.is_open(datetime(2026, 6, 7, 9, 0, tzinfo=UTC), NEW_YORK)  # Sun 05:00


def test_the_next_opening_is_found_across_a_weekend_and_a_clock_change() -> None:
    weekdays = parse_hours("Mon-Fri 09:00-17:00")
    friday_evening = datetime(2026, 3, 6, 23, 0, tzinfo=UTC)  # before the March clock change
    opening = weekdays.next_opening(friday_evening, NEW_YORK)
    assert (opening.strftime("%A %H:%M"), opening.tzname()) == ("Monday 09:00", "EDT")
