"""The program format with levels, micro interventions and the hub: loading, every mistake a
coordinator can make (with file and line), rule expressions, and when events go out."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.care.planning import occurrence_moments, time_of_day
from bot.care.programs import EventSpec, Program, ProgramError, load_program
from bot.care.rules import NAMES, RuleError, compile_rule, counting
from bot.store.models import Participant

NEW_YORK = ZoneInfo("America/New_York")

# A small program in the whole model: two levels, three micro interventions (one with an
# alternative event, re-engagement and a micro-randomized choice), the hub and its narrative.
MODEL_PROGRAM = """\
title: Calm Kids
description: short ideas for calmer evenings with young children
frequency: about one text a day for 4 weeks
contact: the study team
join_keywords: [CALM]
welcome: welcome.txt
duration_days: 28
seed: calm-v1

attributes:
  wake_time: "07:00"

hub:
  narrative: narrative.txt
  first_day: 1
  at: "18:00"
  evaluate_every_days: 7
  finished: finished.txt
  state_assessment:
    key: stress
    template: state_check.txt
    assessment: {type: scale, min: 1, max: 5}

levels:
  - key: availability
    title: Making room for you
    rationale: Everything is harder when you run on empty.
    need: "state.stress is not none and state.stress >= 4"
    interventions: [breathing]
  - key: positive
    title: Positive moments
    rationale: Warm moments make cooperation easier.
    interventions: [gratitude, praise]

interventions:
  breathing:
    title: A minute to breathe
    rationale: Slow breathing calms stress, so you can respond, not react.
    outcome:
      achieved: "answered >= 2"
    events:
      - key: practice
        goal: symptom relief
        template: practice.txt
        day: 1
        at: "wake_time + 0:30"
        times: 3
        assessment: {type: yes_no}

  gratitude:
    title: Noticing the good
    rationale: Noticing what goes well helps you see more of it.
    outcome:
      achieved: "at_least(3) >= 3"
      disengaged: "answered == 0"
    end_early: "unanswered_in_a_row >= 3"
    re_engage:
      after_unanswered: 2
      event: nudge
      per_week: 1
    events:
      - key: learn
        goal: educational
        template: learn.txt
        day: 0
        at: "18:30"
      - key: exercise
        goal: skill acquisition
        template: exercise.txt
        from: previous
        day: 1
        window: "19:00-20:00"
        every_days: 1
        times: 5
        when: "occurrence == 1 or last is none or last >= 2"
        otherwise: easier
        assessment:
          type: scale
          min: 1
          max: 5
          reminder: {after_hours: 2, text: "A moment for tonight's good thing? Reply 1-5."}
          timeout_hours: 12
      - key: easier
        alternative: true
        goal: load reduction
        template: easier.txt
        assessment: {type: yes_no}
      - key: nudge
        alternative: true
        goal: social/emotional support
        template: nudge.txt

  praise:
    title: Specific praise
    rationale: Saying exactly what went well shows your child what to repeat.
    outcome:
      achieved: "at_least(1) >= 2"
    events:
      - key: practise
        goal: skill acquisition
        template: praise.txt
        day: 1
        at: "16:30"
        times: 2
        randomize:
          choose: {practise: 0.5, why: 0.5}
        assessment: {type: number, min: 0, max: 50}
      - key: why
        alternative: true
        goal: change of perspective
        template: why.txt
        assessment: {type: number, min: 0, max: 50}
"""

TEMPLATES = {
    "welcome.txt": "Welcome to {{ program.title }}: {{ program.frequency }}. Reply STOP to stop.",
    "narrative.txt": (
        "{% if previous is not none %}{{ previous.title }}: {{ previous.outcome }}. {% endif %}"
        "Next: {{ current.title }} (part {{ current.level.position }} of "
        "{{ current.level.count }}). {{ current.rationale }}"
        "{% if next is not none %} Later: {{ next.title }}.{% endif %}"
    ),
    "finished.txt": "That's the end of {{ program.title }}. Thank you!",
    "state_check.txt": "How stressed have you felt this week? Reply 1 (not at all) to 5 (very).",
    "practice.txt": "Take 5 slow breaths. Did you manage it? Reply YES or NO.",
    "learn.txt": "Tonight: notice one good moment with your child.",
    "exercise.txt": "Good moment {{ event.occurrence }} of {{ event.times }}: how did it feel? 1-5",
    "easier.txt": "Hard day? Just one small thing that went OK. Did you find one? YES or NO",
    "nudge.txt": "Thinking of you. Reply any time.",
    "praise.txt": "Praise one specific thing today. How many times did you? Reply a number.",
    "why.txt": "Kids repeat what gets noticed. How many times did you praise today?",
}


def write_model_program(root: Path, name: str = "calm-kids", text: str = MODEL_PROGRAM,
                        templates: dict[str, str] | None = None) -> Path:
    """The model program (or `text`) and its templates in `root/name`."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "program.yaml").write_text(text, encoding="utf-8")
    for filename, body in {**TEMPLATES, **(templates or {})}.items():
        (folder / filename).write_text(body + "\n", encoding="utf-8")
    return folder


def line_of(text: str, marker: str) -> int:
    """The line of `text` that holds `marker` (1-based)."""
    return next(n for n, line in enumerate(text.splitlines(), start=1) if marker in line)


# --- a valid program ---------------------------------------------------------------------------


def test_a_program_with_levels_interventions_and_a_hub_loads_as_written(tmp_path: Path) -> None:
    program = load_program(write_model_program(tmp_path))

    assert [level.key for level in program.levels] == ["availability", "positive"]
    availability, positive = program.levels
    assert availability.interventions == ("breathing",)
    assert availability.need is not None and availability.need.source.startswith("state.stress")
    assert positive.need is None and positive.interventions == ("gratitude", "praise")
    assert [i.key for i in program.interventions] == ["breathing", "gratitude", "praise"]
    assert {i.key: i.level for i in program.interventions} == {
        "breathing": "availability", "gratitude": "positive", "praise": "positive",
    }
    assert program.attribute_defaults == {"wake_time": "07:00"}
    assert (program.duration_days, program.seed) == (28, "calm-v1")

    hub = program.hub
    assert hub is not None
    assert (hub.narrative, hub.finished, hub.first_day, hub.at, hub.evaluate_every_days) == (
        "narrative.txt", "finished.txt", 1, time(18), 7,
    )
    assert hub.state is not None and hub.state.key == "stress"
    assert (hub.state.assessment.kind, hub.state.assessment.maximum) == ("scale", 5)


def test_interventions_keep_their_events_rules_and_alternatives(tmp_path: Path) -> None:
    program = load_program(write_model_program(tmp_path))
    gratitude = program.intervention("gratitude")
    assert gratitude is not None
    assert [e.key for e in gratitude.events] == ["learn", "exercise", "easier", "nudge"]
    assert [e.key for e in gratitude.planned] == ["learn", "exercise"]
    assert [name for name, _ in gratitude.outcome] == ["achieved", "disengaged"]
    assert gratitude.end_early is not None
    assert gratitude.re_engage is not None
    assert (gratitude.re_engage.event, gratitude.re_engage.after_unanswered) == ("nudge", 2)

    learn, exercise, easier, _ = gratitude.events
    assert (learn.anchor, learn.start_day, learn.at, learn.times) == ("start", 0, time(18, 30), 1)
    assert (exercise.anchor, exercise.start_day, exercise.times) == ("previous", 1, 5)
    assert exercise.window == (time(19), time(20))
    assert exercise.otherwise == "easier" and exercise.is_decision_point
    assert exercise.assessment is not None
    assert exercise.assessment.reminder_after_hours == 2
    assert exercise.assessment.timeout_hours == 12
    assert easier.alternative and not learn.alternative

    breathing = program.intervention("breathing")
    assert breathing is not None
    # Without a 'disengaged' rule, "answered == 0" is the default.
    assert [(name, rule.source) for name, rule in breathing.outcome] == [
        ("achieved", "answered >= 2"), ("disengaged", "answered == 0"),
    ]
    [practice] = breathing.events
    assert (practice.attribute, practice.offset_minutes, practice.at) == ("wake_time", 30, time(7))

    praise = program.intervention("praise")
    assert praise is not None
    assert dict(praise.events[0].randomize) == {"practise": 0.5, "why": 0.5}


def test_a_probability_leaves_the_rest_to_skipping(tmp_path: Path) -> None:
    text = MODEL_PROGRAM.replace("choose: {practise: 0.5, why: 0.5}", "probability: 0.3")
    praise = load_program(write_model_program(tmp_path, text=text)).intervention("praise")
    assert praise is not None
    assert dict(praise.events[0].randomize) == pytest.approx({"practise": 0.3, "skip": 0.7})


def test_a_delivery_key_finds_its_intervention_and_event(tmp_path: Path) -> None:
    program = load_program(write_model_program(tmp_path))
    intervention, event = program.find_event("gratitude/exercise#3")
    assert intervention is not None and intervention.key == "gratitude"
    assert event is not None and event.key == "exercise"
    assert program.find_event("gratitude/missing#1")[1] is None
    assert program.find_event("nowhere/exercise#1") == (None, None)


# --- mistakes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "marker", "reason"),
    [
        ("goal: educational", "goal: cheering up", "goal: cheering up",
         "goal 'cheering up' is not one of: educational, feedback"),
        ('window: "19:00-20:00"', 'window: "20:00-18:00"', "window:",
         "'window' should be two local times like \"18:00-20:00\", the first earlier"),
        ('at: "wake_time + 0:30"', 'at: "bed_time + 0:30"', "bed_time",
         "'at' should be a local time like 10:00 or an attribute with a time, like \"wake_time "
         "+ 0:30\" (attributes: wake_time)"),
        ('end_early: "unanswered_in_a_row >= 3"', 'end_early: "unanswered_in_a_row >="',
         "end_early:", "rule 'unanswered_in_a_row >=' is not a valid expression"),
        ('achieved: "at_least(3) >= 3"', 'achieved: "atleast(3) >= 3"', "atleast",
         "rule 'atleast(3) >= 3' uses 'atleast', which rules do not know (they can use: "),
        ('need: "state.stress is not none and state.stress >= 4"', 'need: "stress >= 4"',
         "need:", "uses 'stress', which rules do not know"),
        ("otherwise: easier", "otherwise: simpler", "- key: exercise",
         "otherwise names event 'simpler', which is not an event of gratitude"),
        ("choose: {practise: 0.5, why: 0.5}", "choose: {practise: 0.5, reason: 0.5}",
         "- key: practise", "randomize names event 'reason', which is not an event of praise"),
        ("event: nudge", "event: nudges", "event: nudges",
         "re_engage names event 'nudges', which is not an event of gratitude"),
        ("choose: {practise: 0.5, why: 0.5}", "choose: {practise: 0.7, why: 0.5}", "choose:",
         "the probabilities add up to 1.2, more than 1"),
        ("choose: {practise: 0.5, why: 0.5}", "probability: 1.5", "probability:",
         "'probability' should be a number between 0 and 1"),
        ("interventions: [gratitude, praise]", "interventions: [gratitude]", "  praise:",
         "intervention 'praise' is in no level (add it to a level's interventions)"),
        ("interventions: [breathing]", "interventions: [breathing, praise]",
         "interventions: [gratitude, praise]",
         "intervention 'praise' is already in level 'availability'"),
        ("interventions: [gratitude, praise]", "interventions: [gratitude, praise, play]",
         "interventions: [gratitude, praise, play]",
         "intervention 'play' is not defined under 'interventions'"),
        ("template: easier.txt", "template: easy.txt", "template: easy.txt",
         "template 'easy.txt' does not exist in calm-kids/"),
        ("narrative: narrative.txt", "narrative: story.txt", "narrative: story.txt",
         "template 'story.txt' does not exist in calm-kids/"),
        ("after_hours: 2,", "after_hours: 12,", "after_hours: 12",
         "a reminder needs 'after_hours', more than 0 and less than the question's "
         "timeout_hours (12)"),
        ('        when: "occurrence == 1 or last is none or last >= 2"\n', "",
         "- key: exercise", "'otherwise' needs a 'when' rule"),
        ("      disengaged: \"answered == 0\"", "      gave_up: \"answered == 0\"", "gave_up",
         "outcome 'gave_up' should be one of: achieved, not achieved, disengaged"),
    ],
    ids=[
        "unknown goal", "window backwards", "unknown attribute", "rule syntax error",
        "rule unknown function", "rule unknown name", "otherwise missing event",
        "choose missing event", "re_engage missing event", "probabilities above 1",
        "probability above 1", "intervention in no level", "intervention in two levels",
        "level names undefined intervention", "missing event template",
        "missing narrative template", "reminder after timeout", "otherwise without when",
        "unknown outcome",
    ],
)
def test_each_mistake_names_the_file_line_and_what_to_do(
    tmp_path: Path, old: str, new: str, marker: str, reason: str
) -> None:
    assert MODEL_PROGRAM.count(old) == 1
    text = MODEL_PROGRAM.replace(old, new)
    with pytest.raises(ProgramError) as caught:
        load_program(write_model_program(tmp_path, text=text))
    where = f"calm-kids/program.yaml:{line_of(text, marker)}: "
    assert any(p.startswith(where) and reason in p for p in caught.value.problems), (
        where, caught.value.problems,
    )


def test_every_mistake_in_the_file_is_reported_at_once(tmp_path: Path) -> None:
    text = (MODEL_PROGRAM.replace("goal: educational", "goal: fun")
            .replace("otherwise: easier", "otherwise: simpler")
            .replace("interventions: [gratitude, praise]", "interventions: [gratitude]"))
    with pytest.raises(ProgramError) as caught:
        load_program(write_model_program(tmp_path, text=text))
    lines = sorted(int(p.split(":")[1]) for p in caught.value.problems)
    assert lines == sorted([line_of(text, "goal: fun"), line_of(text, "- key: exercise"),
                            line_of(text, "  praise:")])


def test_levels_without_a_hub_are_refused(tmp_path: Path) -> None:
    start, end = MODEL_PROGRAM.index("hub:"), MODEL_PROGRAM.index("levels:")
    text = MODEL_PROGRAM[:start] + MODEL_PROGRAM[end:]
    with pytest.raises(ProgramError) as caught:
        load_program(write_model_program(tmp_path, text=text))
    assert any(p.startswith(f"calm-kids/program.yaml:{line_of(text, 'levels:')}: ")
               and "a program with levels needs a 'hub'" in p for p in caught.value.problems)


# --- rule expressions --------------------------------------------------------------------------


def rule_context(**names: object) -> dict[str, object]:
    """Every name a rule may use, for a participant with no history, overridden by `names`."""
    context: dict[str, object] = {
        **counting([]), "asked": 0, "answered": 0, "missing": 0, "unanswered_in_a_row": 0,
        "response_rate": 1.0, "state": {"stress": None}, "attributes": {}, "outcomes": {},
        "day": 0, "run_day": 0, "occurrence": 1, "times": 1, "local_hour": 18, "weekday": 0,
    }
    assert set(context) == NAMES
    return {**context, **names}


@pytest.mark.parametrize(
    ("source", "names", "expected"),
    [
        ("last >= 3", counting([2.0, 4.0]), True),
        ("last >= 3", counting([4.0, 2.0]), False),
        ("at_least(3) >= 2", counting([3.0, 1.0, 5.0]), True),
        ("at_most(2) == 1", counting([3.0, 1.0, 5.0]), True),
        ("answers | length == 3", counting([3.0, 1.0, 5.0]), True),
        ("last is none", {}, True),
        ("occurrence == 1 or last is none or last >= 2", {"occurrence": 2}, True),
        ("state.stress is not none and state.stress >= 4", {}, False),
        ("state.stress is not none and state.stress >= 4", {"state": {"stress": 5.0}}, True),
        ("'gratitude' in outcomes", {"outcomes": {"gratitude": "achieved"}}, True),
        ("outcomes.get('praise') != 'achieved'", {}, True),
        ("response_rate < 0.5 and unanswered_in_a_row >= 2",
         {"response_rate": 0.25, "unanswered_in_a_row": 2}, True),
        ("attributes.wake_time == '07:00'", {"attributes": {"wake_time": "07:00"}}, True),
        ("weekday < 5 and local_hour >= 18", {"weekday": 4}, True),
        (True, {}, True),
    ],
)
def test_a_rule_holds_as_written(source: object, names: dict[str, object], expected: bool
                                 ) -> None:
    rule = compile_rule(source, "calm-kids/program.yaml:7")
    assert rule.holds(rule_context(**names)) is expected


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("last >=", "is not a valid expression"),
        ("last >= 3)", "is not a valid expression"),
        ("lats >= 3", "uses 'lats', which rules do not know"),
        ("", "a rule should be an expression like"),
        ("   ", "a rule should be an expression like"),
        (["last"], "a rule should be an expression like"),
    ],
)
def test_a_rule_that_cannot_compile_names_its_line(source: object, reason: str) -> None:
    with pytest.raises(RuleError) as caught:
        compile_rule(source, "calm-kids/program.yaml:12")
    assert str(caught.value).startswith("calm-kids/program.yaml:12: ")
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("source", "names", "reason"),
    [
        ("last >= 3", {}, "'>=' not supported between instances of 'NoneType' and 'int'"),
        ("state.stress >= 4", {}, "'>=' not supported"),
        ("outcomes.gratitude == 'achieved'", {}, "has no attribute 'gratitude'"),
        ("at_least(3) / answered > 0.5", {}, "division by zero"),
        # The sandbox refuses Python internals: the rule fails instead of reaching them.
        ("answers.__class__.__mro__ | length > 0", {}, "unsafe"),
    ],
)
def test_a_rule_that_fails_on_a_participant_names_its_line(
    source: str, names: dict[str, object], reason: str
) -> None:
    rule = compile_rule(source, "calm-kids/program.yaml:30")
    with pytest.raises(RuleError) as caught:
        rule.holds(rule_context(**names))
    message = str(caught.value)
    assert message.startswith(f"calm-kids/program.yaml:30: rule '{source}' failed: ")
    assert reason in message
    assert rule.where == "calm-kids/program.yaml:30"


# --- when events go out ------------------------------------------------------------------------


def event(**fields: object) -> EventSpec:
    values: dict[str, object] = {"key": "exercise", "goal": "skill acquisition",
                                 "template": "exercise.txt", "at": time(10)}
    return EventSpec(**{**values, **fields})  # type: ignore[arg-type]


@pytest.fixture
def program(tmp_path: Path) -> Program:
    return load_program(write_model_program(tmp_path))


def person(participant_id: int = 1, timezone: str = "America/New_York",
           **attributes: str) -> Participant:
    return Participant(id=participant_id, phone="", program="calm-kids", timezone=timezone,
                       enrolled_at=datetime(2026, 3, 1, 15, tzinfo=UTC), attributes=attributes)


def local_times(moments: list[datetime], tz: ZoneInfo = NEW_YORK) -> list[str]:
    return [m.astimezone(tz).strftime("%Y-%m-%d %H:%M") for m in moments]


def test_a_fixed_time_is_the_same_local_time_every_day(program: Program) -> None:
    spec = event(at=time(10, 15), start_day=1, every_days=2, times=3)
    moments = occurrence_moments(spec, anchor_day=date(2026, 3, 2), participant=person(),
                                 program=program, seed="gratitude/exercise@1")
    assert local_times(moments) == ["2026-03-03 10:15", "2026-03-05 10:15", "2026-03-07 10:15"]
    assert all(m.tzinfo == UTC for m in moments)
    assert time_of_day(spec, person(), program, "x#1") == (time(10, 15), 0)


def test_a_window_gives_a_moment_in_it_the_same_on_a_rerun(program: Program) -> None:
    spec = event(window=(time(19), time(20)), at=time(19), times=5)

    def moments(who: Participant, seed: str = "gratitude/exercise@7") -> list[datetime]:
        return occurrence_moments(spec, anchor_day=date(2026, 3, 2), participant=who,
                                  program=program, seed=seed)

    first = moments(person(1))
    assert first == moments(person(1))  # reproducible per participant
    for moment in first:
        local = moment.astimezone(NEW_YORK)
        assert time(19) <= local.time() <= time(20)
    assert len({m.astimezone(NEW_YORK).time() for m in first}) > 1  # not the same every day
    assert moments(person(1), seed="gratitude/exercise@8") != first  # a new run, a new draw
    # Different participants get different moments.
    clocks = {tuple(m.astimezone(NEW_YORK).time() for m in moments(person(n)))
              for n in range(1, 21)}
    assert len(clocks) > 15


def test_an_attribute_anchor_uses_the_participants_own_time_or_the_default(
    program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    spec = event(attribute="wake_time", offset_minutes=30, at=time(7), times=2)

    def local(who: Participant) -> list[str]:
        return local_times(occurrence_moments(spec, anchor_day=date(2026, 3, 2),
                                              participant=who, program=program, seed="b@1"))

    assert local(person(wake_time="06:15")) == ["2026-03-02 06:45", "2026-03-03 06:45"]
    assert local(person()) == ["2026-03-02 07:30", "2026-03-03 07:30"]
    with caplog.at_level(logging.WARNING):
        assert local(person(wake_time="late")) == ["2026-03-02 07:30", "2026-03-03 07:30"]
    assert "attribute wake_time is not a time" in caplog.text
    before = event(attribute="wake_time", offset_minutes=-45, at=time(7))
    assert time_of_day(before, person(wake_time="06:15"), program, "b#1") == (time(6, 15), -45)


def test_local_times_hold_across_spring_forward_in_new_york(program: Program) -> None:
    # 2026-03-08: clocks jump from 02:00 to 03:00; UTC offsets go from -5 to -4.
    spec = event(at=time(10), times=3)
    moments = occurrence_moments(spec, anchor_day=date(2026, 3, 7), participant=person(),
                                 program=program, seed="s@1")
    assert local_times(moments) == ["2026-03-07 10:00", "2026-03-08 10:00", "2026-03-09 10:00"]
    assert [m.hour for m in moments] == [15, 14, 14]
    # A time that does not exist that night goes out just after the gap, not an hour early.
    [gap] = occurrence_moments(event(at=time(2, 30)), anchor_day=date(2026, 3, 8),
                               participant=person(), program=program, seed="s@1")
    assert local_times([gap]) == ["2026-03-08 03:30"]
    # A wake-time anchor keeps its offset on the day of the change.
    anchored = event(attribute="wake_time", offset_minutes=30, at=time(7), times=2)
    moments = occurrence_moments(anchored, anchor_day=date(2026, 3, 7), participant=person(),
                                 program=program, seed="s@1")
    assert local_times(moments) == ["2026-03-07 07:30", "2026-03-08 07:30"]


def test_local_times_hold_across_fall_back_in_new_york(program: Program) -> None:
    # 2026-11-01: clocks go back from 02:00 to 01:00; UTC offsets go from -4 to -5.
    spec = event(at=time(10), times=3)
    moments = occurrence_moments(spec, anchor_day=date(2026, 10, 31), participant=person(),
                                 program=program, seed="f@1")
    assert local_times(moments) == ["2026-10-31 10:00", "2026-11-01 10:00", "2026-11-02 10:00"]
    assert [m.hour for m in moments] == [14, 15, 15]
    # 01:30 happens twice that night: the first one.
    [twice] = occurrence_moments(event(at=time(1, 30)), anchor_day=date(2026, 11, 1),
                                 participant=person(), program=program, seed="f@1")
    assert twice == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    # A window that night stays within its local hours.
    window = event(window=(time(18), time(20)), at=time(18), times=2)
    for moment in occurrence_moments(window, anchor_day=date(2026, 10, 31), participant=person(),
                                     program=program, seed="f@1"):
        assert time(18) <= moment.astimezone(NEW_YORK).time() <= time(20)


def test_a_window_on_the_night_of_spring_forward_stays_within_its_local_hours(
    program: Program,
) -> None:
    # 02:00-03:00 does not exist on 2026-03-08: a moment in "01:00-03:00" is between 01:00 and
    # 03:00 on the clock, never an hour after the window closed.
    spec = event(window=(time(1), time(3)), at=time(1))
    for participant_id in range(1, 41):
        [moment] = occurrence_moments(spec, anchor_day=date(2026, 3, 8),
                                      participant=person(participant_id), program=program,
                                      seed="s@1")
        local = moment.astimezone(NEW_YORK)
        assert local.date() == date(2026, 3, 8)
        assert time(1) <= local.time() <= time(3), (participant_id, local)
