"""A rule's state read in one statement is the state the four separate reads give, on
PostgreSQL and on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.care.programs import programs_in
from bot.care.state import engagement, outcomes_of, rule_state, run_tally, state_of
from bot.settings import PROJECT_ROOT
from bot.store.models import Answer, Delivery, DeliveryStatus, InterventionRun, Participant

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
MOMENT = START + timedelta(days=9)


def _history(session: Session) -> tuple[int, InterventionRun]:
    """Nine days of a participant: prompts answered, skipped and timed out, state answers
    (the latest one counts), an ended run with its outcome, and an open run."""
    person = Participant(phone="+15550100001", program="positive-parenting",
                         timezone="America/Chicago", enrolled_at=START)
    session.add(person)
    session.flush()
    assert person.id is not None
    ended = InterventionRun(participant_id=person.id, intervention="gratitude", started_at=START,
                            ended_at=START + timedelta(days=3), outcome="achieved")
    running = InterventionRun(participant_id=person.id, intervention="small_breaks",
                              started_at=START + timedelta(days=4))
    session.add_all([ended, running])
    session.flush()
    for day in range(9):
        at = START + timedelta(days=day)
        run = running if day >= 4 else ended
        prompt = Delivery(participant_id=person.id, kind="event", run_id=run.id, due_at=at,
                          sent_at=at, status=DeliveryStatus.DELIVERED,
                          assessment={"type": "scale", "min": 1, "max": 5})
        mood = Delivery(participant_id=person.id, kind="state", due_at=at, sent_at=at,
                        status=DeliveryStatus.DELIVERED,
                        assessment={"type": "scale", "state_key": "mood"})
        session.add_all([prompt, mood])
        session.flush()
        if day % 3 != 2:  # every third prompt goes unanswered, some of them timed out
            session.add(Answer(participant_id=person.id, delivery_id=prompt.id or 0,
                               raw=str(day % 5 + 1), value=float(day % 5 + 1),
                               answered_at=at + timedelta(minutes=5)))
        elif day == 5:
            session.add(Answer(participant_id=person.id, delivery_id=prompt.id or 0,
                               missing=True, answered_at=at + timedelta(hours=4)))
        if day in (1, 6):
            session.add(Answer(participant_id=person.id, delivery_id=mood.id or 0, raw="x",
                               value=float(day), answered_at=at + timedelta(minutes=1)))
    session.commit()
    return person.id, running


def test_one_statement_reads_what_four_do(any_engine: Engine):
    program = programs_in(PROJECT_ROOT / "narratives")["positive-parenting"]
    with Session(any_engine, expire_on_commit=False) as session:
        person, running = _history(session)
        separately = {
            **run_tally(session, running),
            **engagement(session, person, MOMENT),
            "state": state_of(session, person, program),
            "outcomes": outcomes_of(session, person),
        }
        together = rule_state(session, person, program, running, MOMENT)
        without_run = rule_state(session, person, program, None, MOMENT)
    assert _plain(together) == _plain(separately)
    assert together["at_least"](3) == separately["at_least"](3) == 2
    assert together["asked"] == 5 and together["answered"] == 3 and together["missing"] == 1
    # The latest: the mood question and prompt of day 8, the mood question of day 7.
    assert together["unanswered_in_a_row"] == 3 and together["response_rate"] == 0.357
    assert together["answers"] == [5.0, 2.0, 3.0]  # the open run's, oldest first
    assert together["state"] == {"stress": None, "mood": 6.0}  # the latest mood answer
    assert together["outcomes"] == {"gratitude": "achieved"}
    assert _plain(without_run) == _plain({**separately, **run_tally(session, None)})


def _plain(state: dict[str, object]) -> dict[str, object]:
    """The state without its functions (at_least, at_most), which compare by identity."""
    return {name: value for name, value in state.items() if not callable(value)}
