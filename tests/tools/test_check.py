"""`bot check`: every template rendered and every rule tried for synthetic participants (new,
succeeding, struggling, disengaged), with the context production gives them."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlmodel import Session

from bot.care.context import message_context
from bot.care.programs import Program, load_program
from bot.care.rules import NAMES
from bot.care.state import rule_context
from bot.settings import Settings
from bot.store.models import Answer, Delivery, DeliveryStatus, InterventionRun, Participant
from bot.tools.check import NO_EVENT, PERSONAS, Synthetic, check_programs, renders, rule_checks
from bot.tools.cli import main
from tests.care.test_program_format import MODEL_PROGRAM, line_of, write_model_program
from tests.conftest import ROOT

YAML = "calm-kids/program.yaml"
Check = Callable[[Path], Result]


@pytest.fixture
def check(tmp_path: Path) -> Check:
    """Run `bot check` on a narratives folder (no database or Redis needed)."""

    def run(narratives: Path) -> Result:
        env = {
            "TEND_ENV": "test",
            "TEND_INSTANCE_DIR": str(tmp_path / "instance"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
            "NARRATIVES_DIR": str(narratives),
        }
        return CliRunner().invoke(main, ["check"], env=env, catch_exceptions=False)

    return run


def model(tmp_path: Path, text: str = MODEL_PROGRAM, **templates: str) -> Path:
    """A narratives folder holding the model program, with `templates` (name_txt=body)."""
    narratives = tmp_path / "narratives"
    write_model_program(narratives, text=text, templates={
        name.replace("_txt", ".txt"): body for name, body in templates.items()
    })
    return narratives


def lines_about(output: str, text: str) -> list[str]:
    return [line for line in output.splitlines() if text in line]


# --- clean programs pass -----------------------------------------------------------------------


def test_check_passes_on_the_shipped_programs(check: Check) -> None:
    result = check(ROOT / "narratives")
    assert result.exit_code == 0, result.output
    assert "all programs are valid" in result.output


def test_the_model_program_passes_without_warnings(check: Check, tmp_path: Path) -> None:
    result = check(model(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "all programs are valid"


def test_every_template_is_rendered_for_every_persona(tmp_path: Path) -> None:
    program = load_program(model(tmp_path) / "calm-kids")
    named = {"welcome.txt", "narrative.txt", "finished.txt", "state_check.txt", "practice.txt",
             "learn.txt", "exercise.txt", "easier.txt", "nudge.txt", "praise.txt", "why.txt"}
    for persona in PERSONAS:
        jobs = list(renders(program, persona))
        # The welcome goes out before there is any history.
        welcome = set() if persona.outcome is None else {"welcome.txt"}
        assert {job.template for job in jobs} == named - welcome, persona.name
        exercise = [job.context["event"]["occurrence"] for job in jobs
                    if job.template == "exercise.txt"]
        assert exercise == [1, 5]  # first and last occurrence
        # An alternative goes out in place of a planned event, with its occurrence number.
        easier = [job.context["event"] for job in jobs if job.template == "easier.txt"]
        assert [e["occurrence"] for e in easier] == [1, 5]
        assert all(e["key"] == "easier" and e["goal"] == "load reduction" for e in easier)
        # The narrative is rendered before each intervention, with `next` by level order.
        narratives = [job.context for job in jobs if job.template == "narrative.txt"]
        assert {c["current"]["key"] for c in narratives} == {"breathing", "gratitude", "praise"}
        for context in narratives:
            expected = "positive" if context["current"]["key"] == "breathing" else None
            assert (context["next"] or {}).get("key") == expected
        if persona.outcome is None:
            assert all(c["previous"] is None for c in narratives)
            assert {c["reason"] for c in narratives} == {"start", "state"}
        else:
            assert all(c["previous"]["outcome"] == persona.outcome for c in narratives)


def test_every_rule_is_tried_for_every_persona(tmp_path: Path) -> None:
    program = load_program(model(tmp_path) / "calm-kids")
    written = {line_of(MODEL_PROGRAM, marker) for marker in (
        "need:", "when:", "end_early:", 'achieved: "answered >= 2"',
        'achieved: "at_least(3) >= 3"', 'disengaged: "answered == 0"',
        'achieved: "at_least(1) >= 2"',
    )}
    for persona in PERSONAS:
        checks = list(rule_checks(program, persona))
        assert {int(c.rule.where.rsplit(":", 1)[1]) for c in checks} >= written
        assert all(set(c.context) == NAMES for c in checks)
        new = persona.outcome is None
        assert all((c.context["last"] is None) == (new or not c.context["answers"])
                   for c in checks)
        assert all(set(c.context["state"]) == {"stress"} for c in checks)
        if new:
            assert all(c.context["state"]["stress"] is None for c in checks)
            assert all(c.context["outcomes"] == {} for c in checks)


# --- problems ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("templates", "where", "reason", "persona", "usage"),
    [
        ({"narrative_txt": "Well done with {{ previous.title }}. Next: {{ current.title }}."},
         "narrative.txt:1", "'None' has no attribute 'title'", "new participant",
         "narrative before breathing"),
        ({"narrative_txt": "{{ current.title }}.\nLater: {{ next.title }}."},
         "narrative.txt:2", "'None' has no attribute 'title'", "new participant",
         "narrative before gratitude"),
        ({"exercise_txt": "Last time: {{ history.answers[-1].value }}. Again? 1-5"},
         "exercise.txt:1", "has no element -1", "new participant", "event gratitude/exercise"),
        ({"easier_txt": "Hard day?\n{{ event.nickname }}"},
         "easier.txt:2", "has no attribute 'nickname'", "new participant",
         "event gratitude/easier in place of occurrence 1"),
        ({"nudge_txt": "{{ history.interventions[-2].title }} went well."},
         "nudge.txt:1", "has no element -2", "new participant", "event gratitude/nudge"),
        ({"why_txt": "{{ 100 // history.answered }} praises?"},
         "why.txt:1", "ZeroDivisionError", "new participant", "event praise/why"),
        ({"finished_txt": "You finished {{ current.title }}."},
         "finished.txt:1", "'current' is undefined", "new participant", "finished"),
        ({"finished_txt": "{% set won = history.interventions | selectattr('outcome', "
                          "'equalto', 'achieved') | list %}Best: {{ won[0].title }}"},
         "finished.txt:1", "has no element 0", "new participant", "finished"),
        ({"practice_txt": "{% if history.answered > 2 %}{{ 10 / (history.answers[-1].value - "
                          "history.answers[-1].value) }}{% endif %}Breathe."},
         "practice.txt:1", "ZeroDivisionError", "successes", "event breathing/practice"),
        ({"learn_txt": "Tonight: {{ program.title }\n"},
         "learn.txt:1", "unexpected '}'", "new participant", "event gratitude/learn"),
    ],
    ids=["previous none", "next none", "no answers yet", "alternative template",
         "re-engage template", "division by zero",
         "finished", "nothing achieved", "only for successes", "syntax error"],
)
def test_a_template_that_fails_is_reported_once_with_its_line_and_persona(
    check: Check, tmp_path: Path, templates: dict[str, str], where: str, reason: str,
    persona: str, usage: str,
) -> None:
    result = check(model(tmp_path, **templates))

    assert result.exit_code == 1
    [line] = lines_about(result.output, f"calm-kids/{where.split(':')[0]}")
    assert line.startswith(f"calm-kids/{where}: ")
    assert reason in line
    assert f"(for the {persona} persona, {usage}" in line
    assert "1 problem(s) in narratives/" in result.output


@pytest.mark.parametrize(
    ("old", "new", "marker", "reason", "hint"),
    [
        ('need: "state.stress is not none and state.stress >= 4"', 'need: "state.stress >= 4"',
         "need:", "rule 'state.stress >= 4' failed: '>=' not supported",
         "state.stress is none then: write 'state.stress is not none and ...'"),
        ('when: "occurrence == 1 or last is none or last >= 2"', 'when: "last >= 2"',
         "when:", "rule 'last >= 2' failed",
         "last is none then: write 'last is not none and ...'"),
        ('achieved: "at_least(1) >= 2"', "achieved: \"outcomes.gratitude == 'achieved'\"",
         "outcomes.gratitude", "has no attribute 'gratitude'",
         "outcomes has no 'gratitude' before it is tried: write \"outcomes.get('gratitude') "
         "== ...\""),
        ('end_early: "unanswered_in_a_row >= 3"', 'end_early: "missing / asked > 0.5"',
         "end_early:", "rule 'missing / asked > 0.5' failed: division by zero", ""),
    ],
    ids=["state none", "last none", "outcome not tried", "division by zero"],
)
def test_a_rule_that_fails_for_a_new_participant_names_its_line_and_a_fix(
    check: Check, tmp_path: Path, old: str, new: str, marker: str, reason: str, hint: str
) -> None:
    assert MODEL_PROGRAM.count(old) == 1
    text = MODEL_PROGRAM.replace(old, new)
    result = check(model(tmp_path, text=text))

    assert result.exit_code == 1
    [line] = lines_about(result.output, f"{YAML}:")
    assert line.startswith(f"{YAML}:{line_of(text, marker)}: ")
    assert reason in line
    assert "(for the new participant persona)" in line
    assert line.endswith(hint)


@pytest.mark.parametrize(
    ("old", "new", "marker", "reason"),
    [
        ('need: "state.stress is not none and state.stress >= 4"',
         'need: "state.mood is not none and state.mood >= 4"', "need:",
         "reads state 'mood', which is not one of the program's state assessment (stress)"),
        ('end_early: "unanswered_in_a_row >= 3"', "end_early: \"'praize' in outcomes\"",
         "end_early:", "reads outcomes 'praize', which is not one of the program's "
                       "interventions (breathing, gratitude, praise)"),
        ('end_early: "unanswered_in_a_row >= 3"',
         "end_early: \"outcomes.get('breath') == 'achieved'\"", "end_early:",
         "reads outcomes 'breath'"),
        ('end_early: "unanswered_in_a_row >= 3"',
         "end_early: \"attributes.bed_time is none\"", "end_early:",
         "reads attributes 'bed_time', which is not one of the program's attributes "
         "(wake_time)"),
    ],
    ids=["state", "outcomes in", "outcomes get", "attributes"],
)
def test_a_rule_reading_a_key_the_program_never_fills_is_an_error(
    check: Check, tmp_path: Path, old: str, new: str, marker: str, reason: str
) -> None:
    text = MODEL_PROGRAM.replace(old, new)
    result = check(model(tmp_path, text=text))
    assert result.exit_code == 1
    [line] = lines_about(result.output, f"{YAML}:")  # not also as a failure for a persona
    assert line.startswith(f"{YAML}:{line_of(text, marker)}: ")
    assert reason in line


def test_an_over_long_message_is_an_error_naming_the_file_and_persona(
    check: Check, tmp_path: Path
) -> None:
    # 400 characters per answer: fine for a new participant, too long with 5 answers.
    body = "{% for answer in history.answers %}{{ 'x' * 400 }}{% endfor %}Rate tonight 1-5."
    result = check(model(tmp_path, exercise_txt=body))

    assert result.exit_code == 1
    [line] = lines_about(result.output, "exercise.txt")
    assert line.startswith("calm-kids/exercise.txt: the message is 2017 characters, more than "
                           "the 1600 a text can carry (for the successes persona")


def test_an_over_long_reminder_names_the_line_of_its_event(check: Check, tmp_path: Path) -> None:
    reminder = "Still time to notice one good thing? " * 45
    text = MODEL_PROGRAM.replace("A moment for tonight's good thing? Reply 1-5.", reminder)
    result = check(model(tmp_path, text=text))

    assert result.exit_code == 1
    [line] = lines_about(result.output, "reminder")
    where = f"{YAML}:{line_of(text, '- key: exercise')}"
    assert line.startswith(f"{where}: the reminder of event 'gratitude/exercise' is "
                           f"{len(reminder.strip())} characters")


def test_a_message_over_two_segments_is_a_warning_only(check: Check, tmp_path: Path) -> None:
    body = "Tonight, notice one good moment with your child. " * 8
    result = check(model(tmp_path, learn_txt=body))

    assert result.exit_code == 0, result.output
    [line] = lines_about(result.output, "learn.txt")
    assert line.startswith("warning: calm-kids/learn.txt: the message takes 3 GSM-7 segments")
    assert "all programs are valid" in result.output


def test_a_message_that_renders_empty_is_an_error(check: Check, tmp_path: Path) -> None:
    result = check(model(tmp_path, nudge_txt="{% if history.answered > 100 %}Hi{% endif %}"))
    assert result.exit_code == 1
    [line] = lines_about(result.output, "nudge.txt")
    assert line.startswith("calm-kids/nudge.txt: the message is empty (for the new participant")


def test_problems_of_the_program_file_are_reported_before_rendering(tmp_path: Path) -> None:
    text = MODEL_PROGRAM.replace("template: easier.txt", "template: easy.txt")
    problems = check_programs(model(tmp_path, text=text))
    assert problems == [
        f"{YAML}:{line_of(text, 'easy.txt')}: template 'easy.txt' does not exist in calm-kids/"
    ]


def test_the_shipped_programs_with_a_broken_narrative_fail(check: Check, tmp_path: Path) -> None:
    narratives = tmp_path / "narratives"
    shutil.copytree(ROOT / "narratives" / "daily-checkin", narratives / "daily-checkin")
    (narratives / "daily-checkin" / "evening_rating.txt").write_text(
        "How did today go? Yesterday you said {{ history.answers[-1].raw }}.\n", encoding="utf-8"
    )
    result = check(narratives)
    assert result.exit_code == 1
    assert ("daily-checkin/evening_rating.txt:1: list object has no element -1 (for the new "
            "participant persona, event evening_rating 1 of 7)") in result.output


# --- the synthetic contexts are the ones production gives --------------------------------------


def shape(value: Any) -> Any:
    """The structure of a context: mapping keys all the way down, lists by their first item."""
    if isinstance(value, Mapping):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return "value"


@pytest.fixture
def program(tmp_path: Path) -> Program:
    return load_program(model(tmp_path) / "calm-kids")


def test_template_contexts_have_the_shape_production_gives(
    session: Session, program: Program
) -> None:
    enrolled = datetime(2026, 1, 5, 15, tzinfo=UTC)
    participant = Participant(phone="+14155550123", program=program.name,
                              timezone="America/New_York", enrolled_at=enrolled,
                              attributes={"wake_time": "06:30"})
    session.add(participant)
    session.flush()
    assert participant.id is not None
    past = InterventionRun(participant_id=participant.id, intervention="gratitude",
                           level="positive", started_at=enrolled + timedelta(days=1),
                           ended_at=enrolled + timedelta(days=7), outcome="achieved")
    current = InterventionRun(participant_id=participant.id, intervention="breathing",
                              level="availability", started_at=enrolled + timedelta(days=8),
                              reason="level 1 of 2 (Making room for you) is in need")
    session.add_all([past, current])
    session.flush()
    prompt = Delivery(participant_id=participant.id, kind="event", run_id=past.id,
                      event_key="gratitude/exercise#1", template="exercise.txt",
                      due_at=enrolled + timedelta(days=2), sent_at=enrolled + timedelta(days=2),
                      status=DeliveryStatus.DELIVERED, context={"occurrence": 1, "times": 5},
                      assessment={"type": "scale", "min": 1, "max": 5, "timeout_hours": 12})
    state = Delivery(participant_id=participant.id, kind="state", event_key="state/stress",
                     template="state_check.txt", due_at=enrolled + timedelta(days=8),
                     sent_at=enrolled + timedelta(days=8), status=DeliveryStatus.DELIVERED,
                     assessment={"type": "scale", "min": 1, "max": 5, "state_key": "stress"})
    session.add_all([prompt, state])
    session.flush()
    session.add_all([
        Answer(participant_id=participant.id, delivery_id=prompt.id, raw="4", value=4.0,
               answered_at=enrolled + timedelta(days=2, hours=1)),
        Answer(participant_id=participant.id, delivery_id=state.id, raw="5", value=5.0,
               answered_at=enrolled + timedelta(days=8, hours=1)),
    ])
    deliveries = {
        "event": Delivery(participant_id=participant.id, kind="event", run_id=current.id,
                          event_key="breathing/practice#3", template="practice.txt",
                          due_at=enrolled + timedelta(days=10)),
        "alternative": Delivery(participant_id=participant.id, kind="event", run_id=current.id,
                                event_key="gratitude/exercise#5", template="easier.txt",
                                context={"occurrence": 5, "times": 5, "sent_event": "easier"},
                                due_at=enrolled + timedelta(days=10)),
        "narrative": Delivery(participant_id=participant.id, kind="narrative",
                              run_id=current.id, template="narrative.txt",
                              context={"reason": "ended", "previous_run": past.id},
                              due_at=enrolled + timedelta(days=8)),
        "welcome": Delivery(participant_id=participant.id, kind="welcome",
                            template="welcome.txt", due_at=enrolled),
    }
    session.add_all(deliveries.values())
    session.flush()

    def production(kind: str) -> dict[str, Any]:
        return message_context(session=session, participant=participant, program=program,
                               delivery=deliveries[kind])

    synthetic = Synthetic(program, PERSONAS[1])
    breathing, gratitude = program.intervention("breathing"), program.intervention("gratitude")
    assert breathing is not None and gratitude is not None
    practice = {"key": "practice", "occurrence": 3, "times": 3, "goal": "symptom relief"}
    assert production("event")["event"] == practice
    assert shape(production("event")) == shape(synthetic.message(practice, breathing))
    easier = {"key": "easier", "occurrence": 5, "times": 5, "goal": "load reduction"}
    assert production("alternative")["event"] == easier
    assert easier in [job.context["event"] for job in renders(program, PERSONAS[1])
                      if job.template == "easier.txt"]
    narrative = production("narrative")
    assert shape(narrative) == shape(synthetic.narrative(breathing, "ended"))
    expected = synthetic.narrative(breathing, "ended")
    assert narrative["current"] == {**expected["current"], "reason": current.reason}
    assert narrative["next"] == expected["next"]
    assert production("welcome")["event"] == NO_EVENT
    assert shape(production("welcome")) == shape(synthetic.message(dict(NO_EVENT)))

    context = rule_context(session=session, participant=participant, program=program,
                           run=current, moment=enrolled + timedelta(days=10), occurrence=3,
                           times=3)
    mirrored = synthetic.rules(in_run=True, occurrence=3, times=3, clock=breathing.events[0].at)
    assert set(context) == set(mirrored) == NAMES
    assert context["state"] == {"stress": 5.0} and set(mirrored["state"]) == {"stress"}
    assert context["attributes"] == {"wake_time": "06:30"}
    assert mirrored["attributes"] == {"wake_time": "07:00"}
    assert context["outcomes"] == {"gratitude": "achieved"}
    assert {key: type(value) for key, value in context.items() if value is not None} == {
        key: type(value) for key, value in mirrored.items()
        if value is not None and key in context and context[key] is not None
    }


def test_a_program_wide_alternative_is_rendered_with_its_own_event(
    session: Session, tmp_path: Path
) -> None:
    """An alternative sent in place of a program-wide event: `event` is the one sent (as it is
    for an intervention's alternatives), which is what `bot check` renders it with."""
    folder = tmp_path / "daily-checkin"
    shutil.copytree(ROOT / "narratives" / "daily-checkin", folder)
    yaml = folder / "program.yaml"
    yaml.write_text(yaml.read_text(encoding="utf-8").replace(
        "    times: 7\n    assessment:",
        "    times: 7\n    when: \"response_rate >= 0.5\"\n    otherwise: short_rating\n"
        "    assessment:",
    ) + "\n  - key: short_rating\n    alternative: true\n    goal: load reduction\n"
        "    template: evening_rating.txt\n", encoding="utf-8")
    program = load_program(folder)
    participant = Participant(phone="+14155550123", program=program.name,
                              timezone="America/New_York",
                              enrolled_at=datetime(2026, 1, 5, 15, tzinfo=UTC))
    session.add(participant)
    session.flush()
    delivery = Delivery(participant_id=participant.id or 0, kind="event",
                        event_key="evening_rating#7", template="evening_rating.txt",
                        context={"occurrence": 7, "times": 7, "sent_event": "short_rating"},
                        due_at=datetime(2026, 1, 8, 0, tzinfo=UTC))
    session.add(delivery)
    session.flush()

    event = message_context(session=session, participant=participant, program=program,
                            delivery=delivery)["event"]

    assert (event["key"], event["goal"], event["occurrence"]) == (
        "short_rating", "load reduction", 7,
    )
    assert event in [job.context["event"] for job in renders(program, PERSONAS[0])
                     if job.usage.startswith("event short_rating")]


def texting(settings: Settings, narratives: Path) -> Callable[[str], str]:
    """Text the bot (over its signed webhook) with the programs in `narratives`."""
    from bot import create_app
    from tests.conftest import inbound_params, sign

    wired = settings.with_overrides(narratives_dir=narratives)
    client = create_app(wired).test_client()

    def text(body: str) -> str:
        params = inbound_params("+14155550123", body)
        response = client.post("/twilio/sms", data=params, headers={
            "X-Twilio-Signature": sign(wired, "/twilio/sms", params),
        })
        assert response.status_code == 200
        return response.get_data(as_text=True)

    return text


# narratives/README.md: every template can use `event` and `history`, so the welcome sent when
# someone joins by text and the state question CHECKIN sends get them too.


def test_the_welcome_sent_on_joining_by_text_can_use_history(
    settings: Settings, tmp_path: Path
) -> None:
    text = texting(settings, model(
        tmp_path, welcome_txt="Welcome to {{ program.title }}! Replies: {{ history.answered }}."
    ))
    assert "Welcome to Calm Kids! Replies: 0." in text("CALM")


def test_the_state_question_sent_on_checkin_can_use_history(
    settings: Settings, tmp_path: Path
) -> None:
    text = texting(settings, model(
        tmp_path, state_check_txt="Stress 1-5? ({{ history.answered }} answers{{ event.key }})"
    ))
    assert "Welcome to Calm Kids" in text("CALM")
    assert "Stress 1-5? (0 answers)" in text("CHECKIN")
