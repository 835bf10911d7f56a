"""The reply-time report over conversation rows, on a frozen clock: weeks in the console's zone,
medians and 90th percentiles, late replies (and unanswered ones past their time), crisis apart,
per staff member."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from bot.people.response_times import (
    duration_words,
    median,
    percentile,
    report,
    window_start,
)
from bot.store.support import Conversation

ZONE = ZoneInfo("America/New_York")
# Wednesday 11 March 2026, 11:00 in New York (daylight saving time began on Sunday the 8th).
NOW = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
COLE, CORA = 3, 2  # the coach who answers, the coordinator who resolves
NAMES = {COLE: "Cole", CORA: "Cora"}
MIN = timedelta(minutes=1)


def conversation(opened: datetime, *, crisis: bool = False, reply: timedelta | None = None,
                 due: timedelta | None = None, resolve: timedelta | None = None,
                 by: int | None = COLE, resolver: int | None = CORA) -> Conversation:
    return Conversation(
        opened_at=opened, reason="crisis" if crisis else "human", severity=0 if crisis else 1,
        target_at=opened + due if due is not None else None, assigned_to=by,
        first_reply_at=opened + reply if reply is not None else None,
        first_reply_by=by if reply is not None else None,
        resolved_at=opened + resolve if resolve is not None else None,
        resolved_by=resolver if resolve is not None else None,
    )


def this_weeks_crises() -> list[Conversation]:
    return [
        # Answered in 4 minutes of the 5 allowed, resolved after two hours.
        conversation(datetime(2026, 3, 9, 14, tzinfo=UTC), crisis=True, reply=4 * MIN,
                     due=5 * MIN, resolve=timedelta(hours=2)),
        # Answered after 10 minutes: late.
        conversation(datetime(2026, 3, 10, 14, tzinfo=UTC), crisis=True, reply=10 * MIN,
                     due=5 * MIN, resolve=timedelta(hours=1)),
        # Nobody has answered for 30 minutes, 25 past its time: late, though still open.
        conversation(datetime(2026, 3, 11, 14, 30, tzinfo=UTC), crisis=True, due=5 * MIN),
        # Opened two minutes ago, due in three: not late yet.
        conversation(NOW - 2 * MIN, crisis=True, due=5 * MIN),
    ]


@freeze_time(NOW)
def test_this_weeks_crisis_figures_count_replies_late_ones_and_unanswered_ones_past_due() -> None:
    crisis = report(this_weeks_crises(), zone=ZONE, names=NAMES).sections[0]
    week = crisis.weeks[0]
    assert (week.label, week.start, week.current) == ("2026-W11", date(2026, 3, 9), True)
    f = week.figures
    assert (f.opened, f.answered, f.resolved, f.late) == (4, 2, 2, 2)
    assert f.median_reply == 7 * MIN
    assert f.p90_reply == 10 * MIN
    assert f.median_resolution == timedelta(minutes=90)


@freeze_time(NOW)
def test_twelve_weeks_are_shown_newest_first_even_when_nothing_happened() -> None:
    sections = report([], zone=ZONE, names=NAMES).sections
    assert [s.key for s in sections] == ["crisis", "other"]
    for section in sections:
        assert len(section.weeks) == 12
        assert section.weeks[0].start == date(2026, 3, 9)
        assert section.weeks[-1].start == date(2025, 12, 22)
        assert [w.current for w in section.weeks].count(True) == 1
        assert all(w.figures.opened == 0 and w.figures.median_reply is None
                   for w in section.weeks)
        assert section.staff == []


@freeze_time(NOW)
def test_a_week_is_counted_in_the_consoles_zone_not_in_utc() -> None:
    # Sunday 8 March, 23:30 in New York: already Monday in UTC, still last week for the team.
    sunday_night = datetime(2026, 3, 9, 3, 30, tzinfo=UTC)
    other = report([conversation(sunday_night, reply=30 * MIN)], zone=ZONE,
                   names=NAMES).sections[1]
    assert other.weeks[0].figures.opened == 0
    assert (other.weeks[1].label, other.weeks[1].figures.opened) == ("2026-W10", 1)


@freeze_time(NOW)
def test_conversations_before_the_twelve_weeks_are_left_out() -> None:
    first_monday = datetime(2025, 12, 22, 0, 30, tzinfo=ZONE)
    rows = [conversation(first_monday, reply=MIN),
            conversation(first_monday - timedelta(hours=1), reply=MIN)]
    other = report(rows, zone=ZONE, names=NAMES).sections[1]
    assert other.total.opened == 1
    assert other.weeks[-1].figures.opened == 1
    assert window_start(NOW, ZONE) == datetime(2025, 12, 22, tzinfo=ZONE)


@freeze_time(NOW)
def test_crisis_and_other_conversations_are_counted_apart() -> None:
    rows = [*this_weeks_crises(),
            conversation(NOW - timedelta(days=1), reply=timedelta(hours=3),
                         due=timedelta(hours=4))]
    crisis, other = report(rows, zone=ZONE, names=NAMES).sections
    assert (crisis.total.opened, other.total.opened) == (4, 1)
    assert other.total.median_reply == timedelta(hours=3)
    assert other.total.late == 0


@freeze_time(NOW)
def test_the_median_and_90th_percentile_of_ten_first_replies() -> None:
    monday = datetime(2026, 2, 23, 15, tzinfo=UTC)
    rows = [conversation(monday + k * timedelta(hours=1), reply=(k + 1) * 10 * MIN)
            for k in range(10)]  # 10, 20, ... 100 minutes
    week = report(rows, zone=ZONE, names=NAMES).sections[1].weeks[2]
    assert week.label == "2026-W09"
    assert week.figures.median_reply == 55 * MIN
    assert week.figures.p90_reply == 90 * MIN


@freeze_time(NOW)
def test_each_staff_member_gets_their_own_replies_resolutions_and_late_replies() -> None:
    crisis = report(this_weeks_crises(), zone=ZONE, names=NAMES).sections[0]
    cole, cora = crisis.staff
    assert (cole.name, cole.figures.answered, cole.figures.late) == ("Cole", 2, 1)
    assert cole.figures.opened == 4  # every one was assigned to Cole
    assert (cole.figures.median_reply, cole.figures.p90_reply) == (7 * MIN, 10 * MIN)
    assert (cora.name, cora.figures.answered, cora.figures.resolved) == ("Cora", 0, 2)
    assert cora.figures.median_resolution == timedelta(minutes=90)


@freeze_time(NOW)
def test_one_resolved_without_a_reply_is_late_only_if_its_time_passed_first() -> None:
    opened = NOW - timedelta(days=2)
    rows = [conversation(opened, due=10 * MIN, resolve=5 * MIN),
            conversation(opened, due=10 * MIN, resolve=20 * MIN)]
    other = report(rows, zone=ZONE, names=NAMES).sections[1]
    assert (other.total.answered, other.total.resolved, other.total.late) == (0, 2, 1)


@freeze_time(NOW)
def test_a_conversation_with_no_due_time_is_never_late() -> None:
    rows = [conversation(NOW - timedelta(days=3))]
    assert report(rows, zone=ZONE, names=NAMES).sections[1].total.late == 0


@pytest.mark.parametrize(("values", "share", "expected"), [
    ([], 0.9, None),
    ([5], 0.9, 5),
    ([1, 2, 3, 4], 0.5, 2),
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 0.9, 10),
])
def test_the_nearest_rank_percentile(values: list[int], share: float,
                                     expected: int | None) -> None:
    spans = [v * MIN for v in values]
    assert percentile(spans, share) == (expected * MIN if expected is not None else None)


def test_the_median_of_an_even_count_is_halfway_between_the_middle_two() -> None:
    assert median([MIN, 4 * MIN]) == timedelta(seconds=150)
    assert median([]) is None


@pytest.mark.parametrize(("span", "words"), [
    (None, "—"),
    (timedelta(seconds=45), "45 s"),
    (timedelta(minutes=12, seconds=30), "12 min"),
    (timedelta(hours=3, minutes=5), "3 h 05 min"),
    (timedelta(hours=47), "47 h 00 min"),
    (timedelta(days=2, hours=4), "2 d 4 h"),
])
def test_durations_read_at_a_glance(span: timedelta | None, words: str) -> None:
    assert duration_words(span) == words
