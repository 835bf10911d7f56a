"""A participant's timeline: every kind of event, text only for those who may read it, paged,
and as few queries for a year of history as for a week."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from freezegun import freeze_time
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.people.timeline import PAGE, timeline
from tests.conftest import counted
from tests.people.factories import add_note, add_team, participant_with_story

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_the_timeline_tells_the_whole_story_newest_first(session: Session) -> None:
    coach = add_team(session)["coach"]
    with freeze_time(START + timedelta(days=5)):
        person = participant_with_story(session, start=START, days=3)
        add_note(session, participant=person, author=coach, body="Spoke on the phone: safe.",
                 at=START + timedelta(days=4))
        story = timeline(session, participant=person, bodies=True)
    kinds = [e.kind for e in story.past]
    assert kinds[0] == "note" and story.past[0].body == "Spoke on the phone: safe."
    assert {"text-out", "text-in", "decision", "intervention", "alert", "consent"} <= set(kinds)
    assert [e.at for e in story.past] == sorted((e.at for e in story.past), reverse=True)
    reply = next(e for e in story.past if e.kind == "text-in" and e.title == "Reply")
    assert ("answers", "evening_rating#3") in reply.facts
    question = next(e for e in story.past if ("event", "evening_rating#3") in e.facts)
    assert ("answer", "3") in question.facts and ("status", "delivered") in question.facts
    decision = next(e for e in story.past if e.kind == "decision")
    assert {("available", "yes"), ("probability", "50%")} <= set(decision.facts)
    ended = next(e for e in story.past if e.title == "gratitude ended")
    assert ("outcome", "achieved") in ended.facts
    assert [e.kind for e in story.upcoming] == ["planned"]
    assert story.earlier is None


def test_without_message_text_the_timeline_says_a_text_exists_but_not_what_it_says(
    session: Session,
) -> None:
    coach = add_team(session)["coach"]
    person = participant_with_story(session, start=START, days=2)
    add_note(session, participant=person, author=coach, body="Lives with her sister.",
             at=START + timedelta(days=3))
    story = timeline(session, participant=person, bodies=False)
    texts = [e for e in story.past if e.kind in ("text-in", "text-out", "note", "alert")]
    assert texts and all(e.body is None and e.hidden for e in texts)
    everything = repr(story)
    for secret in ("i want to die", "Lives with her sister", "take a slow breath", "it was ok"):
        assert secret not in everything


def test_a_year_of_history_costs_the_same_queries_as_a_few_days(
    session: Session, engine: Engine
) -> None:
    short = participant_with_story(session, start=START, days=3)
    long = participant_with_story(session, start=START, days=365, phone="+14155550199")
    with counted(engine) as few:
        timeline(session, participant=short, bodies=True)
    with counted(engine) as year:
        story = timeline(session, participant=long, bodies=True)
    assert len(year) == len(few) <= 10
    assert len(story.past) <= PAGE + 5 and story.earlier is not None


def test_paging_back_through_a_long_history_loses_and_repeats_nothing(session: Session) -> None:
    person = participant_with_story(session, start=START, days=60)
    seen: list[tuple[datetime, str, str]] = []
    before = None
    pages = 0
    while True:
        story = timeline(session, participant=person, bodies=True, before=before)
        seen.extend((e.at, e.kind, e.title) for e in story.past)
        pages += 1
        if story.earlier is None:
            break
        before = story.earlier
    assert pages > 1
    assert len(seen) == len(set(seen))
    # Each day: a tip, a question, a reply, a decision; plus the run's start and end, the
    # enrollment, the crisis text, its alert and the pause it caused.
    assert len(seen) == 60 * 4 + 6
