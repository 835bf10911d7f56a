"""A template's `history` is read only as far as the template uses it: a message that quotes
no history costs no query for it, however long the participant's history; one that does sees
it all."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.care.context import message_context
from bot.care.narrative import render
from bot.care.programs import programs_in
from bot.clock import now
from bot.participants.enrollment import enroll
from bot.settings import PROJECT_ROOT
from bot.store.models import Answer, Delivery, DeliveryStatus, InterventionRun
from tests.conftest import counted

PROGRAMS = programs_in(PROJECT_ROOT / "narratives")


def _asked_and_answered(session: Session, participant_id: int, value: float) -> None:
    asked = Delivery(
        participant_id=participant_id, kind="event", event_key="evening_rating#1",
        template="evening_rating.txt", due_at=now() - timedelta(days=1),
        status=DeliveryStatus.DELIVERED, sent_at=now() - timedelta(days=1),
        assessment={"type": "scale", "min": 1, "max": 5},
    )
    session.add(asked)
    session.flush()
    session.add(Answer(participant_id=participant_id, delivery_id=asked.id or 0, raw=f"{value:g}",
                       value=value, answered_at=now() - timedelta(hours=20)))
    session.flush()


def test_a_message_that_quotes_no_history_reads_none(engine: Engine) -> None:
    program = PROGRAMS["positive-parenting"]
    with Session(engine) as session:
        person = enroll(session=session, phone="+14155550101", program=program,
                        timezone="America/New_York", via="cli")
        session.add(InterventionRun(
            participant_id=person.id or 0, intervention="gratitude", level="calm", reason="",
            started_at=now() - timedelta(days=9), ends_at=now() - timedelta(days=2),
            ended_at=now() - timedelta(days=2), outcome="achieved", end_reason="completed",
        ))
        session.flush()
        tip = Delivery(participant_id=person.id or 0, kind="event", template="breaks_learn.txt",
                       due_at=now())

        with counted(engine) as seen:
            text = render(program, "breaks_learn.txt", message_context(
                session=session, participant=person, program=program, delivery=tip))

        assert text and seen == []
        # The hub's closing message tells the past: its history is read when it is rendered.
        with counted(engine) as seen:
            closing = render(program, "finished.txt", message_context(
                session=session, participant=person, program=program, delivery=tip))
        assert len(seen) == 1
        assert "with 1 practice that went well" in closing


def test_a_message_that_quotes_the_last_answer_sees_it(engine: Engine) -> None:
    program = PROGRAMS["daily-checkin"]
    with Session(engine) as session:
        person = enroll(session=session, phone="+14155550102", program=program,
                        timezone="America/New_York", via="cli")
        _asked_and_answered(session, person.id or 0, 2)
        _asked_and_answered(session, person.id or 0, 4)
        question = Delivery(participant_id=person.id or 0, kind="event",
                            template="evening_rating.txt", due_at=now())

        text = render(program, "evening_rating.txt", message_context(
            session=session, participant=person, program=program, delivery=question))

    assert "Your last answer was 4." in text
