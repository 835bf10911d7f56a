"""What a participant notices when they text: consent keywords, help, safety, answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import Session, col, select

from bot.store.models import Alert, Answer, Delivery, DeliveryStatus, InboundMessage, Participant

# A participant who joined by keyword and has a week of messages ahead.
MAYA = "+14155550123"
# Someone who got the number from a friend and never joined.
STRANGER = "+14155550199"

OPT_OUT_WORDS = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]


def participant(session: Session, phone: str = MAYA) -> Participant:
    session.expire_all()
    return session.exec(select(Participant).where(Participant.phone == phone)).one()


def pending(session: Session) -> list[Delivery]:
    session.expire_all()
    return list(
        session.exec(
            select(Delivery).where(
                col(Delivery.status).in_([DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED])
            )
        )
    )


@pytest.mark.parametrize(
    "text", OPT_OUT_WORDS + ["opt out", "Stop", " stop. ", "STOP!", "Opt-Out", "unsubscribe?"]
)
def test_each_opt_out_keyword_cancels_pending_events_and_confirms_once(text_bot, session, text):
    text_bot(MAYA, "JOIN")
    assert pending(session)
    response = text_bot(MAYA, text)
    [confirmation] = response.replies
    assert "unsubscribed" in confirmation and "START" in confirmation
    assert participant(session).opted_out_at is not None
    assert pending(session) == []
    assert text_bot(MAYA, "STOP").replies == []  # then silence
    assert text_bot(MAYA, "how are you?").replies == []


@pytest.mark.parametrize(
    "text", ["stop by later?", "don't stop", "The end of the day was ok", "Can I cancel friday?"]
)
def test_everyday_sentences_with_stop_words_do_not_opt_out(text_bot, session, text):
    text_bot(MAYA, "JOIN")
    text_bot(MAYA, text)
    assert participant(session).opted_out_at is None
    assert pending(session)


@pytest.mark.parametrize(
    "text",
    ["please stop texting me", "Leave me alone", "don't text me anymore", "take me off your list"],
)
def test_plain_language_revocations_are_honored(text_bot, session, text):
    text_bot(MAYA, "JOIN")
    [confirmation] = text_bot(MAYA, text).replies
    assert "unsubscribed" in confirmation
    assert participant(session).opted_out_at is not None
    assert pending(session) == []


@pytest.mark.parametrize("word", ["START", "yes", "Unstop"])
def test_start_after_stop_resubscribes_and_replans_what_is_ahead(text_bot, session, word):
    with freeze_time("2026-05-04 14:00:00"):
        text_bot(MAYA, "JOIN")
        planned = len(pending(session))
        text_bot(MAYA, "STOP")
    with freeze_time("2026-05-06 14:00:00"):
        [welcome_back] = text_bot(MAYA, word).replies
        assert "Welcome back" in welcome_back
        assert participant(session).opted_out_at is None
        ahead = pending(session)
        assert 0 < len(ahead) < planned
        assert all(d.due_at > datetime(2026, 5, 6, 14, tzinfo=UTC) for d in ahead)


@pytest.mark.parametrize("word", ["HELP", "info", "Help!"])
def test_help_names_the_program_the_contact_and_how_to_stop(text_bot, word):
    text_bot(MAYA, "JOIN")
    [answer] = text_bot(MAYA, word).replies
    assert "Daily Check-in" in answer
    assert "study coordinator" in answer
    assert "STOP" in answer


def test_an_unknown_number_gets_one_polite_answer_a_day(text_bot, session):
    with freeze_time("2026-05-04 14:00:00"):
        [answer] = text_bot(STRANGER, "hello?").replies
        assert "JOIN" in answer and "STOP" in answer
        assert text_bot(STRANGER, "hello??").replies == []
    with freeze_time("2026-05-05 15:00:00"):
        assert len(text_bot(STRANGER, "anyone?").replies) == 1
    assert session.exec(select(Participant)).all() == []
    assert len(session.exec(select(InboundMessage)).all()) == 3  # every text is still recorded


@pytest.mark.parametrize(
    "text",
    ["I want to kill myself", "i dont want to be alive anymore", "thinking about suicide",
     "I've been cutting myself again"],
)
def test_crisis_language_gets_resources_pauses_content_and_alerts(text_bot, session, text):
    text_bot(MAYA, "JOIN")
    [reply] = text_bot(MAYA, text).replies
    assert "988" in reply and "741741" in reply
    assert participant(session).paused_at is not None
    assert pending(session) == []
    [alert] = session.exec(select(Alert)).all()
    assert alert.kind == "crisis"
    assert alert.participant_id == participant(session).id
    assert MAYA not in alert.detail  # numbers are masked wherever they are written out


@pytest.mark.parametrize(
    "text", ["this homework is killing me", "I'm dying to see the new movie", "my phone died"]
)
def test_everyday_exaggerations_are_not_crises(text_bot, session, text):
    text_bot(MAYA, "JOIN")
    for reply in text_bot(MAYA, text).replies:
        assert "988" not in reply
    assert participant(session).paused_at is None
    assert session.exec(select(Alert)).all() == []


def test_crisis_language_in_a_revocation_gets_resources_and_the_opt_out(text_bot, session):
    text_bot(MAYA, "JOIN")
    safety, confirmation = text_bot(MAYA, "please stop texting me, i want to kill myself").replies
    assert "988" in safety and "unsubscribed" in confirmation
    maya = participant(session)
    assert maya.opted_out_at is not None and maya.paused_at is not None
    sent = session.exec(select(Delivery.kind).where(Delivery.via == "twiml")).all()
    assert sorted(sent) == ["confirmation", "safety", "welcome"]  # each reply in the history


def test_crisis_language_from_an_unknown_number_still_gets_resources(text_bot, session):
    [reply] = text_bot(STRANGER, "I want to end my life").replies
    assert "988" in reply
    assert session.exec(select(Alert)).one().participant_id is None


def test_asking_for_a_person_alerts_a_coordinator(text_bot, session):
    text_bot(MAYA, "JOIN")
    [reply] = text_bot(MAYA, "can I talk to a real person").replies
    assert "team" in reply
    assert session.exec(select(Alert)).one().kind == "human"


def test_a_rating_is_credited_to_the_question_and_a_garbled_one_is_asked_again(
    text_bot, session
):
    with freeze_time("2026-05-04 14:00:00"):
        text_bot(MAYA, "JOIN")
    question = session.exec(
        select(Delivery).where(Delivery.event_key == "evening_rating#1")
    ).one()
    question.status, question.sent_at = DeliveryStatus.DELIVERED, question.due_at
    question.body = "How did today go?"
    session.add(question)
    session.commit()
    with freeze_time(question.due_at + timedelta(minutes=20)):
        [clarify] = text_bot(MAYA, "hmm not sure").replies
        assert "1 (hard) to 5 (good)" in clarify
        [thanks] = text_bot(MAYA, "Four!").replies
        assert "Thanks" in thanks
    answer = session.exec(select(Answer)).one()
    assert (answer.delivery_id, answer.value) == (question.id, 4.0)


def test_texting_join_again_does_not_enroll_twice(text_bot, session):
    text_bot(MAYA, "JOIN")
    [reply] = text_bot(MAYA, "JOIN").replies
    assert "already enrolled" in reply
    assert len(session.exec(select(Participant)).all()) == 1


def test_a_broken_program_edit_never_stops_stop_from_working(
    app, text_bot, session, settings, tmp_path
):
    import shutil

    narratives = tmp_path / "narratives"
    shutil.copytree(settings.narratives_dir, narratives)
    app.config["TEND"] = settings.with_overrides(narratives_dir=narratives)
    text_bot(MAYA, "JOIN")
    # A coordinator saves a half-edited file.
    (narratives / "daily-checkin" / "program.yaml").write_text("title: [unclosed\n")
    [confirmation] = text_bot(MAYA, "STOP").replies
    assert "unsubscribed" in confirmation
    assert participant(session).opted_out_at is not None
    assert pending(session) == []


def test_the_sqlite_default_credits_answers_and_records_replies_the_same(settings, tmp_path):
    """SQLite, the zero-setup database, takes two statements where PostgreSQL takes one."""
    from bot.care.programs import load_programs
    from bot.conversation.inbound import handle_inbound
    from bot.store.db import create_tables, get_engine, session_scope
    from tests.conftest import inbound_params

    url = f"sqlite:///{tmp_path / 'tend.db'}"
    engine = get_engine(url)
    create_tables(engine)
    local = settings.with_overrides(database_url=url)
    programs = load_programs(local.narratives_dir)

    def text(body: str, sid: str | None = None):
        with session_scope(engine) as s:
            return handle_inbound(session=s, settings=local, programs=programs,
                                  form=inbound_params(MAYA, body, sid))

    try:
        with freeze_time("2026-05-04 14:00:00"):
            assert "Daily Check-in" in text("JOIN").replies[0]
        with Session(engine) as s:
            question = s.exec(
                select(Delivery).where(Delivery.event_key == "evening_rating#1")
            ).one()
            question.status, question.sent_at = DeliveryStatus.DELIVERED, question.due_at
            asked_at, question_id = question.due_at, question.id
            s.add(question)
            s.commit()
        with freeze_time(asked_at + timedelta(minutes=20)):
            [clarify] = text("hmm not sure").replies
            assert "1 (hard) to 5 (good)" in clarify
            [thanks] = text("4", "SMfour").replies
            assert "Thanks" in thanks
            assert text("4", "SMfour").duplicate  # Twilio's retry of the same text
            [confirmation] = text("STOP").replies
            assert "unsubscribed" in confirmation
        with Session(engine) as s:
            answer = s.exec(select(Answer)).one()
            assert (answer.delivery_id, answer.value) == (question_id, 4.0)
            texts = s.exec(select(InboundMessage).order_by(col(InboundMessage.id))).all()
            assert [(t.intent, t.reply is not None) for t in texts] == [
                ("join", True), ("answer", True), ("answer", True), ("opt_out", True)
            ]
            replies = s.exec(select(Delivery).where(Delivery.via == "twiml")).all()
            assert sorted(d.kind for d in replies) == ["confirmation", "reply", "reply", "welcome"]
            assert s.get(Participant, answer.participant_id).opted_out_at is not None
    finally:
        engine.dispose()
