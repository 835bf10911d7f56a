"""`bot simulate`: whole journeys of simulated participants, on a virtual clock, through the
real stack (SQL, RQ on Redis, the dispatcher, a worker, the twilio library, the sandbox, signed
webhooks). Each test runs its own short simulation and checks a property of the whole journey.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import event, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.care.programs import programs_in
from bot.care.timing import in_quiet_hours
from bot.clock import as_utc
from bot.settings import Settings
from bot.store.models import (
    Answer,
    DecisionPoint,
    Delivery,
    DeliveryStatus,
    InboundMessage,
    InterventionRun,
    Participant,
)
from bot.tools.cli import main
from bot.tools.personas import PERSONAS, Received, make_persona
from bot.tools.simulate import (
    Outcome,
    Plan,
    Summary,
    format_summary,
    simulate,
    summarize,
    transcript,
)
from bot.tools.simulate.inprocess import CALLBACKS, CLAIMS, HUB, SENDING, TEXTS
from bot.tools.simulate.report import SIMULATOR

STAMP = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\d{4}-\d\d-\d\d \d\d:\d\d)  (bot >|you <) ")


def run(settings: Settings, engine: Engine, **plan: object) -> tuple[Outcome, Summary]:
    outcome = simulate(Plan(start=date(2026, 3, 2), **plan), settings)  # type: ignore[arg-type]
    assert outcome.errors == []
    return outcome, summarize(engine, settings, outcome)


def sent_to(session: Session, participant_id: int) -> list[Delivery]:
    return list(
        session.exec(
            select(Delivery)
            .where(Delivery.participant_id == participant_id, col(Delivery.sent_at).is_not(None))
            .order_by(col(Delivery.sent_at))
        ).all()
    )


def test_a_participants_week_reads_as_a_transcript_in_their_local_time(
    settings, engine, redis_conn, session
):
    outcome, summary = run(
        settings, engine, program="daily-checkin", persona="engaged", days=9,
        timezones=("America/Los_Angeles",),
    )
    [person] = outcome.participants
    lines = transcript(engine, person.id)
    assert lines[0].startswith("Mon 2026-03-02 09:00  bot > Welcome")
    stamped = [STAMP.match(line) for line in lines]
    assert all(m or line.startswith(" " * 22) for m, line in zip(stamped, lines, strict=True))
    moments = [datetime.strptime(m.group(2), "%Y-%m-%d %H:%M") for m in stamped if m]
    assert moments == sorted(moments)
    la = ZoneInfo("America/Los_Angeles")
    # Every message the bot sent is there, at its local minute (across the DST change of 8 March).
    for delivery in sent_to(session, person.id):
        assert delivery.sent_at is not None and delivery.body is not None
        local = as_utc(delivery.sent_at).astimezone(la).strftime("%a %Y-%m-%d %H:%M")
        first_line = delivery.body.splitlines()[0]
        assert f"{local}  bot > {first_line}" in lines
    questions = [line for line in lines if "how did today go" in line.lower()]
    assert len(questions) == 7 and all(" 19:00  bot > " in line for line in questions)
    answers = [line for line in lines if "you < " in line]
    assert answers and all(re.search(r"\[answers evening_rating#\d = [1-5]\]", a) for a in answers)
    assert summary.figures["quiet_hour_sends"] == 0


def test_a_late_reply_is_credited_to_the_question_that_asked_it(
    settings, engine, redis_conn, session
):
    outcome, _ = run(
        settings, engine, program="daily-checkin", persona="sporadic", participants=3, days=9,
        seed=3,
    )
    late = 0
    for person in outcome.participants:
        sent = sent_to(session, person.id)
        questions = [d for d in sent if d.assessment is not None]
        answers = session.exec(
            select(Answer, InboundMessage)
            .join(InboundMessage, col(InboundMessage.id) == col(Answer.inbound_message_id))
            .where(Answer.participant_id == person.id)
        ).all()
        for answer, reply in answers:
            [asked] = [q for q in questions if q.id == answer.delivery_id]
            assert asked.sent_at is not None and asked.sent_at < reply.received_at
            # No question went out between the one credited and the reply ...
            assert not [q for q in questions if asked.sent_at < q.sent_at < reply.received_at]
            # ... but another message may have: then the reply came late, and still counts.
            if [d for d in sent if asked.sent_at < d.sent_at < reply.received_at]:
                late += 1
    assert late >= 1


def test_nothing_is_sent_after_stop_but_the_confirmation(settings, engine, redis_conn, session):
    outcome, summary = run(settings, engine, program="positive-parenting", persona="stops",
                           days=12)
    [person] = outcome.participants
    participant = session.get(Participant, person.id)
    assert participant is not None and participant.opted_out_at is not None
    stopped = as_utc(participant.opted_out_at)
    [stop] = session.exec(select(InboundMessage).where(InboundMessage.body == "STOP")).all()
    assert stop.intent == "opt_out"
    after = [d for d in sent_to(session, person.id) if as_utc(d.sent_at) >= stopped]
    assert [d.kind for d in after] == ["confirmation"]
    assert "unsubscribed" in (after[0].body or "")
    assert session.exec(
        select(func.count()).select_from(Delivery).where(
            Delivery.status == DeliveryStatus.SCHEDULED
        )
    ).one() == 0
    assert summary.figures["after_stop"] == 0 and summary.figures["opted_out"] == 1


def test_a_checkin_gets_an_answer_and_the_state_question_it_asks_is_answered(
    settings, engine, redis_conn, session
):
    outcome, _ = run(settings, engine, program="positive-parenting", persona="checkin", days=10)
    [person] = outcome.participants
    checkins = session.exec(select(InboundMessage).where(InboundMessage.body == "CHECKIN")).all()
    assert checkins
    # Positive Parenting answers CHECKIN with its state question, recorded as a prompt ...
    asked = session.exec(
        select(Delivery).where(
            Delivery.participant_id == person.id, Delivery.via == "twiml",
            Delivery.kind == "state",
        )
    ).all()
    assert len(asked) == len(checkins)
    for checkin, question in zip(checkins, sorted(asked, key=lambda d: d.id or 0), strict=True):
        assert checkin.intent == "checkin"
        assert checkin.reply == question.body and "stressed" in (question.body or "")
    # ... and the participant's answer to it is credited to it.
    answered = session.exec(
        select(Answer).where(
            col(Answer.delivery_id).in_([q.id for q in asked]), col(Answer.missing).is_(False)
        )
    ).all()
    assert answered


def test_the_narrative_names_what_was_completed(settings, engine, redis_conn, session):
    outcome, summary = run(settings, engine, program="positive-parenting", persona="engaged",
                           days=14)
    [person] = outcome.participants
    program = programs_in(settings.narratives_dir)["positive-parenting"]
    ended = session.exec(
        select(InterventionRun).where(
            col(InterventionRun.ended_at).is_not(None), InterventionRun.outcome == "achieved"
        )
    ).all()
    assert ended
    narratives = [d for d in sent_to(session, person.id) if d.kind == "narrative"]
    named = 0
    for run_ in ended:
        intervention = program.intervention(run_.intervention)
        assert intervention is not None and run_.ended_at is not None
        following = [n for n in narratives if as_utc(n.sent_at) >= as_utc(run_.ended_at)]
        if following:  # the narrative sent as the next one starts looks back on this one
            assert intervention.title in (following[0].body or "")
            named += 1
    assert named >= 1
    assert all(summary.outcomes[r.intervention].get("achieved") for r in ended)


def test_the_summary_counts_match_the_database(settings, engine, redis_conn, session):
    outcome, summary = run(settings, engine, program="positive-parenting", persona="mix",
                           participants=5, days=10)
    f = summary.figures

    def count(model: type, *where: object) -> int:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()

    assert f["participants"] == count(Participant) == 5
    assert f["messages"] == count(Delivery, col(Delivery.sent_at).is_not(None))
    assert f["scheduled_messages"] == count(
        Delivery, col(Delivery.sent_at).is_not(None), Delivery.via == "api"
    )
    assert f["texts"] == count(InboundMessage) == outcome.texts
    assert f["questions"] == count(
        Delivery, col(Delivery.sent_at).is_not(None), col(Delivery.assessment).is_not(None)
    )
    assert f["answers"] == count(Answer, col(Answer.missing).is_(False))
    assert f["missing"] == count(Answer, col(Answer.missing).is_(True))
    assert f["opted_out"] == count(Participant, col(Participant.opted_out_at).is_not(None))
    assert f["intervention_runs"] == count(InterventionRun)
    assert f["decision_points"] == count(DecisionPoint)
    runs = session.exec(select(InterventionRun)).all()
    for key, outcomes in summary.outcomes.items():
        assert sum(outcomes.values()) == len([r for r in runs if r.intervention == key])
    assert {simulated.persona for simulated in outcome.participants} == set(PERSONAS)
    # Nothing went out in quiet hours (positive-parenting's 21:00-07:00), checked row by row.
    program = programs_in(settings.narratives_dir)["positive-parenting"]
    assert program.quiet_hours is not None
    people = {p.id: p for p in session.exec(select(Participant)).all()}
    scheduled = session.exec(
        select(Delivery).where(Delivery.via == "api", col(Delivery.sent_at).is_not(None))
    ).all()
    assert scheduled
    for delivery in scheduled:
        started = as_utc(delivery.send_started_at or delivery.sent_at)
        tz = ZoneInfo(people[delivery.participant_id].timezone)
        assert not in_quiet_hours(started, tz, *program.quiet_hours), delivery.body
    assert f["quiet_hour_sends"] == 0 and f["after_stop"] == 0


def test_the_summary_says_where_the_time_went(settings, engine, redis_conn):
    statements = [0]

    def counted(*_: object) -> None:
        statements[0] += 1

    event.listen(engine, "after_cursor_execute", counted)
    try:
        outcome, summary = run(settings, engine, program="positive-parenting", persona="mix",
                               participants=5, days=3)
    finally:
        event.remove(engine, "after_cursor_execute", counted)
    f, parts = summary.figures, summary.figures["parts"]
    assert set(parts) == {TEXTS, CLAIMS, SENDING, CALLBACKS, HUB, SIMULATOR}
    # The parts and the simulator's own share make up the wall time, and nothing is counted twice.
    assert sum(part["seconds"] for part in parts.values()) == pytest.approx(f["wall_seconds"],
                                                                          abs=0.05)
    assert parts[TEXTS]["calls"] == outcome.texts
    bots = sum(part.get("statements", 0) for part in parts.values())
    assert all(parts[name]["statements"] > 0 for name in (TEXTS, CLAIMS, SENDING, CALLBACKS))
    # What is left is the simulator's own: its clock, and its reads of what reached each phone.
    assert 0 < statements[0] - bots < bots
    lines = format_summary(summary)
    start = lines.index(
        "  where the time went (share of wall time; SQL statements per message sent):"
    )
    assert [line.split()[0] for line in lines[start + 1:]] == [
        name.split()[0] for name, _ in sorted(parts.items(), key=lambda p: -p[1]["seconds"])
    ]


COIN_FLIP = """\
title: Coin Flip
description: one tip a day, sent with a stated probability
frequency: up to one text a day for 3 days
join_keywords: [FLIP]
welcome: welcome.txt
hub:
  first_day: 0
  at: "10:00"
levels:
  - key: only
    title: The only level
    interventions: [flip]
interventions:
  flip:
    title: A coin flip
    rationale: Each tip is a micro-randomized decision point.
    outcome:
      achieved: "asked >= 1"
    events:
      - key: tip
        goal: educational
        template: tip.txt
        day: 0
        at: "12:00"
        every_days: 1
        times: 3
        randomize:
          probability: 0.3
"""


def test_randomization_frequencies_match_the_declared_probability(
    settings, engine, redis_conn, tmp_path: Path
):
    folder = tmp_path / "narratives" / "coin-flip"
    folder.mkdir(parents=True)
    (folder / "program.yaml").write_text(COIN_FLIP)
    (folder / "welcome.txt").write_text("Welcome to {{ program.title }}. Reply STOP to stop.")
    (folder / "tip.txt").write_text("Tip {{ event.occurrence }}: take a slow breath.")
    flip = settings.with_overrides(narratives_dir=tmp_path / "narratives")
    outcome, summary = run(flip, engine, program="coin-flip", participants=40, days=3)
    rows = {row["choice"]: row for row in summary.randomization}
    assert set(rows) == {"tip", "skip"}
    assert rows["tip"]["of"] == 40 * 3
    assert rows["tip"]["declared"] == 0.3 and rows["skip"]["declared"] == 0.7
    assert abs(rows["tip"]["observed"] - 0.3) < 0.12
    sent = summary.figures["scheduled_messages"] - 40  # less the welcomes
    assert sent == rows["tip"]["n"]


def test_bot_simulate_prints_the_transcript_then_the_figures_as_json():
    # No --database-url and no REDIS_URL: a temporary SQLite file and an embedded Redis.
    result = CliRunner().invoke(
        main, ["simulate", "--program", "daily-checkin", "--persona", "engaged", "--days", "2"],
        env={"REDIS_URL": ""},
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert STAMP.match(lines[1]) and "Welcome to Daily Check-in" in lines[1]
    figures = json.loads(lines[-1])
    assert figures["participants"] == 1 and figures["quiet_hour_sends"] == 0
    assert figures["messages"] >= 3 and figures["errors"] == 0


def test_an_unknown_persona_is_refused_with_the_known_ones():
    result = CliRunner().invoke(
        main, ["simulate", "--program", "daily-checkin", "--persona", "grumpy"]
    )
    assert result.exit_code != 0
    assert "engaged" in result.output and "mix" in result.output


@pytest.mark.parametrize("persona", sorted(PERSONAS))
def test_a_persona_is_reproducible_from_its_seed(persona: str):
    start = datetime(2026, 3, 2, 14, tzinfo=ZoneInfo("UTC"))
    question = {"type": "scale", "min": 1, "max": 5}

    def texts(seed: int) -> list[tuple[str, str]]:
        someone = make_persona(persona, seed=seed, index=0, enrolled_at=start,
                               timezone="America/New_York")
        planned = someone.plan(start + timedelta(days=56))
        for day in range(1, 28):
            asked = Received(start + timedelta(days=day), "Reply 1-5", "event", question, day)
            planned += someone.receive(asked)
        return [(text.at.isoformat(), text.body) for text in planned]

    assert texts(1) == texts(1)
    assert texts(1) != texts(2)
