"""An intervention's block of events moves by local calendar days: wall times hold across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.care.planning import start_run
from bot.care.programs import Program, load_programs
from bot.care.timing import shift_local_days
from bot.clock import now
from bot.participants.enrollment import enroll
from bot.store.db import session_scope
from bot.store.models import Delivery, Participant
from tests.care.test_decisions import PHONE, PROGRAM, write_program

NEW_YORK = ZoneInfo("America/New_York")
# The tiny program's praise events, planned from the day it was enrolled rather than its start.
FROM_ENROLLMENT = PROGRAM.replace(
    "        every_days: 1\n        times: 2\n",
    "        from: enrollment\n        every_days: 1\n        times: 4\n",
)


def in_new_york(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


def tiny(folder: Path, text: str = PROGRAM) -> Program:
    write_program(folder / "tiny", text)
    return load_programs(folder)["tiny"]


def planned(
    engine: Engine, session: Session, program: Program, intervention: str, *,
    enrolled: datetime, started: datetime, wake_time: str = "08:00",
) -> list[datetime]:
    """The local due times of the events `intervention` plans when started at `started`."""
    with freeze_time(enrolled), session_scope(engine) as s:
        person = enroll(session=s, phone=PHONE, program=program, timezone="America/New_York",
                        via="cli", attributes={"wake_time": wake_time})
        person_id = person.id
    with freeze_time(started), session_scope(engine) as s:
        person = s.get(Participant, person_id)
        spec = program.intervention(intervention)
        assert spec is not None
        run = start_run(session=s, participant=person, program=program, intervention=spec,
                           moment=now(), reason="test")
        run_id = run.id
    events = session.exec(
        select(Delivery).where(Delivery.run_id == run_id, Delivery.kind == "event")
        .order_by(col(Delivery.due_at))
    ).all()
    assert all(e.due_at > started for e in events)
    return [e.due_at.astimezone(NEW_YORK) for e in events]


def wall_times(moments: list[datetime]) -> list[tuple[date, time]]:
    return [(m.date(), m.time()) for m in moments]


def test_events_shifted_past_the_november_change_keep_their_local_time(
    engine: Engine, session: Session, tmp_path: Path
):
    program = tiny(tmp_path, FROM_ENROLLMENT)
    moments = planned(engine, session, program, "praise", enrolled=in_new_york(2026, 10, 20, 12),
                      started=in_new_york(2026, 10, 30, 10))
    assert wall_times(moments) == [
        (date(2026, 10, 31), time(9, 0)),
        (date(2026, 11, 1), time(9, 0)),  # the clocks went back at 02:00 that morning
        (date(2026, 11, 2), time(9, 0)),
        (date(2026, 11, 3), time(9, 0)),
    ]


def test_a_block_moved_to_the_next_day_keeps_its_local_time_across_the_november_change(
    engine: Engine, session: Session, tmp_path: Path
):
    program = tiny(tmp_path)
    # Started after the day's 09:00: the block begins the next morning, which is 1 November.
    moments = planned(engine, session, program, "praise", enrolled=in_new_york(2026, 10, 30, 8),
                      started=in_new_york(2026, 10, 31, 11))
    assert wall_times(moments) == [(date(2026, 11, 1), time(9, 0)),
                                   (date(2026, 11, 2), time(9, 0))]


def test_events_shifted_past_the_march_change_keep_their_local_time(
    engine: Engine, session: Session, tmp_path: Path
):
    program = tiny(tmp_path, FROM_ENROLLMENT)
    moments = planned(engine, session, program, "praise", enrolled=in_new_york(2027, 3, 1, 12),
                      started=in_new_york(2027, 3, 12, 10))
    assert wall_times(moments) == [
        (date(2027, 3, 13), time(9, 0)),
        (date(2027, 3, 14), time(9, 0)),  # the clocks went forward at 02:00 that morning
        (date(2027, 3, 15), time(9, 0)),
        (date(2027, 3, 16), time(9, 0)),
    ]


def test_a_window_and_the_events_after_it_keep_their_local_hours_across_the_change(
    engine: Engine, session: Session, tmp_path: Path
):
    program = tiny(tmp_path)
    moments = planned(engine, session, program, "gratitude", enrolled=in_new_york(2026, 10, 30, 8),
                      started=in_new_york(2026, 10, 31, 11))
    learn, *exercises = moments
    assert (learn.date(), learn.time()) == (date(2026, 11, 1), time(10, 0))
    assert [m.date() for m in exercises] == [date(2026, 11, d) for d in (2, 3, 4, 5)]
    assert all(time(19, 0) <= m.time() <= time(20, 0) for m in exercises)


def test_a_wall_time_the_new_day_skips_lands_just_past_the_gap(
    engine: Engine, session: Session, tmp_path: Path
):
    program = tiny(tmp_path, FROM_ENROLLMENT)
    # wake_time 01:30 + 1:00 is 02:30, which 14 March 2027 does not have.
    moments = planned(engine, session, program, "praise", enrolled=in_new_york(2027, 3, 1, 12),
                      started=in_new_york(2027, 3, 13, 3), wake_time="01:30")
    assert wall_times(moments) == [
        (date(2027, 3, 14), time(3, 30)),
        (date(2027, 3, 15), time(2, 30)),
        (date(2027, 3, 16), time(2, 30)),
        (date(2027, 3, 17), time(2, 30)),
    ]


@pytest.mark.parametrize(
    ("moment", "days", "expected"),
    [
        (in_new_york(2026, 10, 31, 9), 1, in_new_york(2026, 11, 1, 9)),
        (in_new_york(2026, 11, 1, 9), -1, in_new_york(2026, 10, 31, 9)),
        (in_new_york(2027, 3, 13, 9), 1, in_new_york(2027, 3, 14, 9)),
        (in_new_york(2026, 10, 20, 9, 15), 14, in_new_york(2026, 11, 3, 9, 15)),
        (in_new_york(2026, 10, 31, 12), 0, in_new_york(2026, 10, 31, 12)),
        # A skipped wall time maps past the gap; a repeated one is its first occurrence.
        (in_new_york(2027, 3, 13, 2, 30), 1, in_new_york(2027, 3, 14, 3, 30)),
        (in_new_york(2026, 10, 31, 1, 30), 1, datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    ],
)
def test_a_moment_moves_by_local_days_keeping_its_wall_time(
    moment: datetime, days: int, expected: datetime
):
    shifted = shift_local_days(moment, days, NEW_YORK)
    assert shifted == expected and shifted.tzinfo == UTC
