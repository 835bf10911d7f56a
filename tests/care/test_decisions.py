"""The micro-intervention engine end to end: hub, narrative, decision rules, assessments.

A small program (written per test under tmp_path) runs through the real stack: SQL outbox,
dispatcher tick, RQ worker, the twilio library against the sandbox, signed webhooks back. The
clock is frozen and moved by hand.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from rq import SimpleWorker
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.care.planning import start_run
from bot.care.programs import load_programs
from bot.clock import now
from bot.delivery.queues import delivery_queue
from bot.delivery.status import apply_unmatched
from bot.participants.enrollment import enroll
from bot.settings import Settings
from bot.store.db import session_scope
from bot.store.models import (
    Answer,
    DecisionPoint,
    Delivery,
    DeliveryStatus,
    InterventionRun,
    Participant,
)
from worker import context, dispatcher

PHONE = "+14155550181"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday

PROGRAM = """\
title: Tiny
description: a test program
frequency: a text or two a day
join_keywords: [TINY]
welcome: welcome.txt
seed: tiny-seed
attributes: {wake_time: "07:00"}
hub:
  narrative: narrative.txt
  first_day: 0
  at: "09:00"
  evaluate_every_days: 7
  finished: finished.txt
  state_assessment:
    key: stress
    template: state.txt
    assessment: {type: scale, min: 1, max: 5, timeout_hours: 3}
levels:
  - key: calm
    title: Calm first
    rationale: When stress is high, calm comes first.
    need: "state.stress is not none and state.stress >= 4"
    interventions: [breathe]
  - key: grow
    title: Growing
    rationale: Then small daily practices.
    interventions: [gratitude, praise]
interventions:
  breathe:
    title: Breathing space
    rationale: One minute of slow breathing.
    outcome: {achieved: "answered >= 1"}
    events:
      - {key: learn, goal: symptom relief, template: t.txt, at: "10:00",
         assessment: {type: yes_no, timeout_hours: 6}}
  gratitude:
    title: Noticing the good
    rationale: Noticing what went well.
    outcome: {achieved: "at_least(3) >= 2"}
    end_early: "unanswered_in_a_row >= 5"
    re_engage: {after_unanswered: 2, event: nudge, per_week: 1}
    events:
      - {key: learn, goal: educational, template: t.txt, at: "10:00"}
      - key: exercise
        goal: skill acquisition
        template: t.txt
        from: previous
        day: 1
        window: "19:00-20:00"
        times: 4
        assessment:
          type: scale
          timeout_hours: 12
          reminder: {after_hours: 2, text: "Reminder: tonight's good thing? Reply 1-5."}
      - {key: nudge, alternative: true, goal: social/emotional support, template: t.txt}
  praise:
    title: Specific praise
    rationale: Naming what your child did well.
    outcome: {achieved: "answered >= 1"}
    events:
      - key: try
        goal: trigger action
        template: t.txt
        at: "wake_time + 1:00"
        every_days: 1
        times: 2
        when: "occurrence == 1 or last is none or last >= 1"
        otherwise: easier
        randomize: {choose: {try: 0.5, easier: 0.5}}
        assessment: {type: yes_no, timeout_hours: 10}
      - {key: easier, alternative: true, goal: load reduction, template: t.txt,
         assessment: {type: yes_no, timeout_hours: 10}}
"""

TEMPLATES = {
    "welcome.txt": "Welcome to {{ program.title }}. Reply STOP to stop, HELP for help.",
    "t.txt": "{{ event.key }} {{ event.occurrence }}/{{ event.times }}",
    "state.txt": "STATE How stressed are you today? Reply 1 (calm) to 5 (very).",
    "finished.txt": "FINISHED",
    "narrative.txt": (
        "NARRATIVE {{ reason }}: {{ current.title }} ({{ current.level.title }}, "
        "{{ current.level.position }} of {{ current.level.count }}). {{ current.rationale }}"
        "{% if previous %} Last: {{ previous.title }} {{ previous.outcome }}.{% endif %}"
        "{% for past in history.interventions if past.outcome %} [{{ past.title }}: "
        "{{ past.outcome }}]{% endfor %}"
        "{% if next %} Next: {{ next.title }}.{% else %} Last step.{% endif %}"
    ),
}


def write_program(folder: Path, text: str = PROGRAM) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "program.yaml").write_text(text)
    for name, body in TEMPLATES.items():
        (folder / name).write_text(body)


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    narratives = tmp_path / "narratives"
    write_program(narratives / "tiny")
    shutil.copytree(Path(__file__).resolve().parents[2] / "narratives" / "daily-checkin",
                    narratives / "daily-checkin")
    return settings.with_overrides(narratives_dir=narratives)


class Journey:
    """One participant on a frozen clock, through the real stack."""

    def __init__(self, stack, engine: Engine, redis_conn, session: Session, clock) -> None:
        self.stack, self.engine, self.redis, self.session, self.clock = (
            stack, engine, redis_conn, session, clock,
        )
        self.program = load_programs(stack.settings.narratives_dir)["tiny"]
        with session_scope(engine) as s:
            person = enroll(session=s, phone=PHONE, program=self.program, timezone="UTC",
                            via="cli")
            s.flush()
            self.participant_id = person.id

    def _round(self) -> None:
        settings = context.current().settings
        queue = delivery_queue(settings, self.redis)
        dispatcher.tick(engine=self.engine, queue=queue, settings=settings)
        SimpleWorker([queue], connection=self.redis).work(burst=True)
        with session_scope(self.engine) as s:
            apply_unmatched(session=s, older_than_seconds=0)

    def _next_moment(self) -> datetime | None:
        with Session(self.engine) as s:
            due = s.exec(select(func.min(Delivery.due_at)).where(
                Delivery.status == DeliveryStatus.SCHEDULED)).one()
            evaluation = s.exec(select(Participant.next_evaluation_at).where(
                Participant.id == self.participant_id)).one()
        moments = [m for m in (due, evaluation) if m is not None]
        return min(moments).astimezone(UTC) if moments else None

    def until(self, moment: datetime) -> None:
        """Live through to `moment`: everything due on the way is evaluated and sent."""
        for _ in range(500):
            self._round()
            upcoming = self._next_moment()
            if upcoming is None or upcoming > moment:
                break
            if upcoming > now():
                self.clock.move_to(upcoming)
        self.clock.move_to(moment)
        self._round()

    def text(self, body: str) -> list[str]:
        before = len(self.received())
        self.stack.text(PHONE, body)
        self._round()
        return self.received()[before:]

    def received(self) -> list[str]:
        return [m.body for m in self.stack.outbound_to(PHONE)]

    def runs(self) -> list[InterventionRun]:
        self.session.expire_all()
        return list(self.session.exec(
            select(InterventionRun).where(InterventionRun.participant_id == self.participant_id)
            .order_by(col(InterventionRun.id))
        ))


@pytest.fixture
def journey(stack, engine, redis_conn, session) -> Iterator[Journey]:
    with freeze_time(START, tick=True) as clock:
        yield Journey(stack, engine, redis_conn, session, clock)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return START.replace(hour=hour, minute=minute) + timedelta(days=day)


def test_the_hub_asks_the_state_question_then_starts_the_level_in_need_with_its_narrative(
    journey: Journey,
):
    journey.until(at(0, 9, 5))
    assert journey.received()[-1].startswith("STATE")
    replies = journey.text("4")
    assert replies  # thanked
    journey.until(at(0, 9, 30))
    texts = journey.received()
    narrative = next(t for t in texts if t.startswith("NARRATIVE"))
    assert "Breathing space (Calm first, 1 of 2)" in narrative
    assert "Next: Growing." in narrative
    journey.until(at(0, 10, 5))
    assert journey.received()[-1] == "learn 1/1"
    assert texts.index(narrative) < len(journey.received()) - 1  # the narrative came first
    [run] = journey.runs()
    assert (run.intervention, run.level, run.ended_at) == ("breathe", "calm", None)


def test_a_low_stress_participant_starts_at_the_first_level_not_in_need_and_history_is_told(
    journey: Journey,
):
    journey.until(at(0, 9, 5))
    journey.text("2")
    journey.until(at(0, 10, 5))
    assert [r.intervention for r in journey.runs()] == ["gratitude"]
    # Two exercises answered well, two ignored: achieved (at least 2 rated 3+).
    journey.until(at(1, 20, 1))
    journey.text("5")
    journey.until(at(2, 20, 1))
    journey.text("4")
    journey.until(at(5, 9, 0))
    runs = journey.runs()
    assert runs[0].outcome == "achieved" and runs[0].end_reason == "completed"
    assert runs[1].intervention == "praise"
    narrative = [t for t in journey.received() if t.startswith("NARRATIVE")][-1]
    assert "Last: Noticing the good achieved." in narrative
    assert "Last step." in narrative


def test_an_unanswered_exercise_gets_one_reminder_and_an_answered_one_none(journey: Journey):
    journey.until(at(0, 9, 5))
    journey.text("1")
    journey.until(at(1, 20, 1))
    journey.text("3")  # the first exercise is answered at once
    journey.until(at(2, 23, 0))  # the second is not
    reminders = [t for t in journey.received() if t.startswith("Reminder")]
    assert len(reminders) == 1
    second = journey.session.exec(select(Delivery).where(
        Delivery.event_key == "gratitude/exercise#2", Delivery.kind == "event")).one()
    reminder = journey.session.exec(select(Delivery).where(
        Delivery.kind == "reminder", Delivery.event_key == "gratitude/exercise#2")).one()
    assert reminder.sent_at - second.sent_at >= timedelta(hours=2)


def test_a_question_left_past_its_timeout_is_recorded_missing(journey: Journey):
    journey.until(at(0, 9, 5))
    journey.text("1")
    journey.until(at(2, 9, 0))  # exercise 1 (day 1 evening) timed out at 12 h
    journey.until(at(2, 9, 1))
    journey.session.expire_all()
    first = journey.session.exec(select(Delivery).where(
        Delivery.event_key == "gratitude/exercise#1", Delivery.kind == "event")).one()
    # Missing answers are written when the hub or a rule next looks: make the hub look.
    from bot.care import hub

    with session_scope(journey.engine) as s:
        person = s.get(Participant, journey.participant_id)
        hub.request(person, "checkin")
        s.add(person)
    journey.until(at(2, 9, 5))
    journey.session.expire_all()
    missing = journey.session.exec(select(Answer).where(Answer.delivery_id == first.id)).one()
    assert missing.missing and missing.value is None


def test_two_unanswered_prompts_bring_a_lighter_event_once_a_week_then_back_off(
    journey: Journey,
):
    journey.until(at(0, 9, 5))
    journey.text("1")
    journey.until(at(4, 21, 0))  # four exercise evenings, none answered
    sent = [t for t in journey.received() if t.split(" ")[0] in ("exercise", "nudge")]
    assert sent == ["exercise 1/4", "exercise 2/4", "nudge 3/4"]
    journey.session.expire_all()
    points = journey.session.exec(select(DecisionPoint).order_by(col(DecisionPoint.id))).all()
    exercises = [p for p in points if "/exercise#" in p.decision]
    assert [p.choice for p in exercises] == ["exercise", "exercise", "re-engage:nudge", "skip"]
    assert exercises[-1].available is False


def test_a_reply_is_credited_to_the_question_that_can_read_it_even_after_a_later_one(
    journey: Journey,
):
    journey.until(at(0, 9, 5))
    journey.text("2")
    journey.until(at(1, 20, 1))  # exercise 1: a 1-5 scale
    with session_scope(journey.engine) as s:  # then a yes/no question arrives
        s.add(Delivery(participant_id=journey.participant_id, kind="question",
                       body="Did you step outside today? Reply YES or NO", due_at=now(),
                       assessment={"type": "yes_no", "timeout_hours": 12}))
    journey.until(at(1, 20, 30))
    journey.text("4")  # only the scale can read "4"
    journey.text("yes")
    journey.session.expire_all()
    answers = {
        d.event_key: a.value for a, d in journey.session.exec(
            select(Answer, Delivery).join(Delivery, col(Delivery.id) == col(Answer.delivery_id))
            .where(col(Answer.missing).is_(False),
                   col(Delivery.kind).in_(("event", "question"))))
    }
    assert answers == {"gratitude/exercise#1": 4.0, None: 1.0}


def test_checkin_asks_the_state_question_and_high_stress_preempts_the_running_intervention(
    journey: Journey,
):
    journey.until(at(0, 9, 5))
    journey.text("1")
    journey.until(at(1, 12, 0))
    [reply] = journey.text("CHECKIN")
    assert reply.startswith("STATE")
    journey.text("5")
    journey.until(at(1, 12, 5))
    runs = journey.runs()
    assert [(r.intervention, r.end_reason) for r in runs] == [
        ("gratitude", "a higher priority came first"), ("breathe", None),
    ]
    narrative = [t for t in journey.received() if t.startswith("NARRATIVE")][-1]
    assert narrative.startswith("NARRATIVE state: Breathing space")


def test_nothing_not_achieved_is_repeated_at_once_an_alternative_at_its_level_comes_first(
    journey: Journey,
):
    journey.until(at(0, 9, 5))
    journey.text("1")
    journey.until(at(6, 9, 0))  # gratitude: never answered -> disengaged
    runs = journey.runs()
    assert runs[0].outcome == "disengaged"
    assert runs[1].intervention == "praise"


def test_randomized_decisions_are_logged_and_reproducible_from_the_seed(journey: Journey):
    journey.until(at(0, 9, 5))
    journey.text("1")
    with session_scope(journey.engine) as s:  # go straight to praise
        run = s.exec(select(InterventionRun)).one()
        run.ended_at, run.outcome, run.end_reason = now(), "achieved", "test"
        s.add(run)
        person = s.get(Participant, journey.participant_id)
        from bot.care import hub

        hub.request(person, "ended")
        s.add(person)
    journey.until(at(2, 12, 0))
    journey.session.expire_all()
    points = journey.session.exec(select(DecisionPoint).order_by(col(DecisionPoint.id))).all()
    assert points, "praise's events are decision points"
    first = points[0]
    assert first.available and first.probability == 0.5 and first.choice in ("try", "easier")
    assert first.program_version == journey.program.version
    import random

    expected = random.Random(f"tiny-seed:{journey.participant_id}:{first.decision}").random()
    assert first.choice == ("try" if expected < 0.5 else "easier")


def test_stop_ends_the_running_intervention_and_nothing_more_is_sent(journey: Journey):
    journey.until(at(0, 9, 5))
    journey.text("1")
    journey.until(at(1, 12, 0))
    count = len(journey.received())
    journey.text("STOP")
    journey.until(at(9, 12, 0))
    assert len(journey.received()) == count + 1  # the confirmation only
    [run] = journey.runs()
    assert run.end_reason == "opted out" and run.outcome is None


def test_an_edit_mid_study_keeps_history_and_cancels_events_it_removed(journey: Journey):
    journey.until(at(0, 9, 5))
    journey.text("1")
    journey.until(at(0, 10, 5))
    journey.session.expire_all()
    learn = journey.session.exec(select(Delivery).where(
        Delivery.event_key == "gratitude/learn#1")).one()
    old_version = learn.program_version
    folder = journey.stack.settings.narratives_dir / "tiny"
    edited = PROGRAM.replace("key: exercise", "key: evening_exercise").replace(
        "times: 4", "times: 2")
    (folder / "program.yaml").write_text(edited)
    (folder / "t.txt").write_text("v2 {{ event.key }} {{ event.occurrence }}/{{ event.times }}")
    journey.until(at(1, 21, 0))
    journey.session.expire_all()
    exercise = journey.session.exec(select(Delivery).where(
        Delivery.event_key == "gratitude/exercise#1", Delivery.kind == "event")).one()
    assert exercise.status == DeliveryStatus.CANCELLED
    assert "is not in program version" in (exercise.error_message or "")
    learn = journey.session.get(Delivery, learn.id)
    assert learn.body == "learn 1/1" and learn.program_version == old_version  # history kept
    assert all(not t.startswith("exercise") for t in journey.received())


def test_enrollment_takes_the_participants_own_attributes_and_refuses_unknown_ones(
    stack, engine
):
    from bot.participants.enrollment import EnrollmentError

    program = load_programs(stack.settings.narratives_dir)["tiny"]
    with session_scope(engine) as s:
        person = enroll(session=s, phone=PHONE, program=program, timezone="UTC", via="cli",
                        attributes={"wake_time": "06:30"})
        assert person.attributes == {"wake_time": "06:30"}
    with session_scope(engine) as s, pytest.raises(EnrollmentError, match="no attribute"):
        enroll(session=s, phone="+14155550182", program=program, timezone="UTC", via="cli",
               attributes={"bedtime": "22:00"})
    with session_scope(engine) as s, pytest.raises(EnrollmentError, match="local time"):
        enroll(session=s, phone="+14155550183", program=program, timezone="UTC", via="cli",
               attributes={"wake_time": "early"})


def test_an_attribute_anchored_event_follows_the_participants_wake_time(stack, engine, session):

    program = load_programs(stack.settings.narratives_dir)["tiny"]
    praise = program.intervention("praise")
    with freeze_time(START), session_scope(engine) as s:
        person = enroll(session=s, phone=PHONE, program=program, timezone="America/Chicago",
                        via="cli", attributes={"wake_time": "06:30"})
        s.flush()
        run = start_run(session=s, participant=person, program=program,
                           intervention=praise, moment=now(), reason="test")
        run_id = run.id
    tries = session.exec(select(Delivery).where(Delivery.run_id == run_id,
                                                Delivery.kind == "event")
                         .order_by(col(Delivery.due_at))).all()
    local = [d.due_at.astimezone(ZoneInfo("America/Chicago")) for d in tries]
    assert [(t.hour, t.minute) for t in local] == [(7, 30), (7, 30)]  # 06:30 + 1:00
    assert local[1].date() - local[0].date() == timedelta(days=1)


def test_the_periodic_evaluation_asks_the_state_question_again_a_week_later(journey: Journey):
    journey.until(at(0, 9, 5))
    journey.text("1")
    journey.until(at(7, 8, 55))
    assert sum(t.startswith("STATE") for t in journey.received()) == 1
    journey.until(at(7, 9, 5))
    assert sum(t.startswith("STATE") for t in journey.received()) == 2
    journey.session.expire_all()
    person = journey.session.get(Participant, journey.participant_id)
    assert person.next_evaluation_at is not None  # the hub has its next look planned
