"""What opens a conversation with the study team, how its clock runs, and what a staff reply
does: texts that need a person, in the order the inbox shows them; a reply through the outbox
that reaches a paused participant and never one who opted out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import Session, col, select

from bot.clock import now
from bot.hours import parse_hours
from bot.people import conversations, inbox
from bot.people.conversations import ConversationError, QuietHours
from bot.store.models import Alert, Delivery, DeliveryStatus, Participant
from bot.store.support import Conversation
from tests.people.factories import add_team

MAYA = "+14155550123"
STRANGER = "+14155550199"
FRIDAY_4PM = "2026-06-05 20:00:00"  # 16:00 in New York


def talks(session: Session) -> list[Conversation]:
    session.expire_all()
    return list(session.exec(select(Conversation).order_by(col(Conversation.id))))


def maya(session: Session) -> Participant:
    session.expire_all()
    return session.exec(select(Participant).where(Participant.phone == MAYA)).one()


def joined(text_bot) -> None:  # type: ignore[no-untyped-def]
    with freeze_time("2026-06-01 14:00:00"):
        text_bot(MAYA, "JOIN")


def test_crisis_language_opens_a_crisis_conversation_due_in_fifteen_minutes(text_bot, session):
    joined(text_bot)
    with freeze_time(FRIDAY_4PM):
        text_bot(MAYA, "i want to die")
    [talk] = talks(session)
    alert = session.exec(select(Alert).where(Alert.kind == "crisis")).one()
    assert (talk.reason, talk.severity, talk.alert_id) == ("crisis", 0, alert.id)
    assert talk.participant_id == maya(session).id
    assert talk.waiting_since == datetime(2026, 6, 5, 20, tzinfo=UTC)
    assert talk.target_at == datetime(2026, 6, 5, 20, 15, tzinfo=UTC)
    with freeze_time("2026-06-05 20:03:00"):
        text_bot(MAYA, "are you there")
    [same] = talks(session)
    assert same.id == talk.id and same.waiting_since == talk.waiting_since


def test_asking_for_a_person_is_due_within_staffed_hours(app, text_bot, session, settings):
    app.config["TEND"] = settings.with_overrides(staffed_hours=parse_hours("Mon-Fri 09:00-17:00"),
                                                 reply_within_hours=8)
    joined(text_bot)
    with freeze_time(FRIDAY_4PM):
        text_bot(MAYA, "can I talk to a person please")
    [talk] = talks(session)
    assert (talk.reason, talk.severity) == ("human", 1)
    # One staffed hour left on Friday, seven more on Monday: due Monday 16:00 New York time.
    assert talk.target_at == datetime(2026, 6, 8, 20, tzinfo=UTC)


def test_a_reply_unreadable_after_the_clarifying_question_reaches_a_person(text_bot, session):
    joined(text_bot)
    question = session.exec(select(Delivery).where(Delivery.event_key == "evening_rating#1")).one()
    question.status, question.sent_at = DeliveryStatus.DELIVERED, question.due_at
    session.add(question)
    session.commit()
    with freeze_time(question.due_at + timedelta(minutes=20)):
        [clarify] = text_bot(MAYA, "hmm not sure").replies
        assert talks(session) == []  # asking once to clarify is the bot's job
        text_bot(MAYA, "the kids were sick and I had no time for anything")
    [talk] = talks(session)
    assert talk.reason == "unreadable" and talk.severity == 2


def test_a_text_while_paused_opens_one_and_an_everyday_text_does_not(text_bot, session):
    joined(text_bot)
    with freeze_time("2026-06-02 15:00:00"):
        text_bot(MAYA, "thanks, that was useful")
    assert talks(session) == []
    person = maya(session)
    person.paused_at = datetime(2026, 6, 2, 16, tzinfo=UTC)
    session.add(person)
    session.commit()
    with freeze_time("2026-06-03 15:00:00"):
        text_bot(MAYA, "when do my messages come back?")
    [talk] = talks(session)
    assert talk.reason == "paused"


def test_a_stranger_asking_for_help_is_kept_by_number(text_bot, session):
    with freeze_time(FRIDAY_4PM):
        text_bot(STRANGER, "I need to talk to someone")
    [talk] = talks(session)
    assert (talk.participant_id, talk.phone, talk.reason) == (None, STRANGER, "human")
    assert conversations.can_text(None) == "This number is not enrolled: enroll it to text back."


def test_a_staff_reply_goes_through_the_outbox_and_stops_the_clock(
    text_bot, session, settings
):
    team = add_team(session)
    joined(text_bot)
    with freeze_time(FRIDAY_4PM):
        text_bot(MAYA, "i want to die")
    [talk] = talks(session)
    with freeze_time("2026-06-05 20:04:00"):
        delivery = conversations.send_reply(
            session, settings.with_overrides(quiet_hours_start=settings.quiet_hours_end),
            conversation=talk, staff=team["coach"], body="Hi, this is Jo from the study team. "
            "Are you safe right now?", program=None, moment=now())
        session.commit()
    assert (delivery.kind, delivery.staff_id, delivery.status) == (
        "staff", team["coach"].id, DeliveryStatus.SCHEDULED)
    [talk] = talks(session)
    assert talk.first_reply_at == datetime(2026, 6, 5, 20, 4, tzinfo=UTC)
    assert talk.waiting_since is None and talk.target_at is None
    assert talk.assigned_to == team["coach"].id
    alert = session.get(Alert, talk.alert_id)
    assert alert.acknowledged_by == team["coach"].email and alert.next_escalation_at is None
    # Their answer comes back into the same conversation, and its clock starts again; the bot
    # adds no automated acknowledgement of its own while a person is answering.
    with freeze_time("2026-06-05 20:09:00"):
        replies = text_bot(MAYA, "yes I'm ok now, my sister is here").replies
    [again] = talks(session)
    assert again.id == talk.id and again.waiting_since == datetime(2026, 6, 5, 20, 9, tzinfo=UTC)
    assert all("Thanks for your message" not in r for r in replies)


def test_a_staff_reply_asks_to_confirm_inside_quiet_hours_and_never_reaches_an_opt_out(
    text_bot, session, settings
):
    team = add_team(session)
    joined(text_bot)
    with freeze_time("2026-06-06 02:30:00"):  # 22:30 in New York: quiet hours
        text_bot(MAYA, "can I talk to a person")
        [talk] = talks(session)
        with pytest.raises(QuietHours) as quiet:
            conversations.send_reply(session, settings, conversation=talk, staff=team["coach"],
                                     body="We'll call you tomorrow.", program=None, moment=now())
        assert quiet.value.until == datetime(2026, 6, 6, 12, tzinfo=UTC)  # 08:00 local
        assert session.exec(select(Delivery).where(Delivery.kind == "staff")).all() == []
        conversations.send_reply(session, settings, conversation=talk, staff=team["coach"],
                                 body="We'll call you tomorrow.", program=None, moment=now(),
                                 quiet_confirmed=True)
        session.commit()
    with freeze_time("2026-06-06 13:00:00"):
        text_bot(MAYA, "STOP")
    [talk] = talks(session)
    with pytest.raises(ConversationError, match="opted out"):
        conversations.send_reply(session, settings, conversation=talk, staff=team["coach"],
                                 body="Hello?", program=None, moment=now(), quiet_confirmed=True)


def test_the_inbox_shows_crisis_first_then_whoever_waited_longest(text_bot, session):
    team = add_team(session)
    with freeze_time("2026-06-05 14:00:00"):
        text_bot("+14155550171", "could someone call me")
    with freeze_time("2026-06-05 15:00:00"):
        text_bot("+14155550172", "I want a real person")
    with freeze_time("2026-06-05 16:00:00"):
        text_bot("+14155550173", "I want to kill myself")
    with freeze_time("2026-06-05 16:05:00"):
        items = inbox.inbox(session, folder="all", staff_id=team["coach"].id, moment=now(),
                            bodies=True)
        counts = inbox.counts(session, team["coach"].id)
    assert [i.conversation.phone[-2:] for i in items] == ["73", "71", "72"]
    assert [i.conversation.severity for i in items] == [0, 1, 1]
    assert [i.past_target for i in items] == [False, False, False]
    assert items[0].last[0].body == "I want to kill myself" and items[0].last[0].inbound
    assert [m.inbound for m in items[0].last] == [True, False]  # the text, then the safety reply
    assert counts == {"mine": 0, "unassigned": 3, "all": 3}
    with freeze_time("2026-06-05 16:16:00"):
        late = inbox.inbox(session, folder="all", staff_id=None, moment=now(), bodies=False)
    assert late[0].past_target and late[0].last[0].body is None  # de-identified: no text


def test_resolving_closes_it_and_the_next_request_opens_a_new_one(text_bot, session):
    team = add_team(session)
    joined(text_bot)
    with freeze_time(FRIDAY_4PM):
        text_bot(MAYA, "can I talk to someone")
    [talk] = talks(session)
    with pytest.raises(ConversationError, match="Choose"):
        conversations.resolve(session, talk, team["coach"], "fine", now())
    conversations.resolve(session, talk, team["coach"], "Called, safe", now())
    session.commit()
    with freeze_time("2026-06-05 22:00:00"):
        text_bot(MAYA, "thanks for the call")
    assert len(talks(session)) == 1  # an everyday text after it was resolved: nothing opens
    with freeze_time("2026-06-06 15:00:00"):
        text_bot(MAYA, "can I talk to a person again")
    first, second = talks(session)
    assert first.outcome == "Called, safe" and second.resolved_at is None


def test_a_person_s_text_reaches_a_paused_participant_and_a_stop_still_stops_it(
    stack, engine, session, redis_conn
):
    from tests.delivery.test_faults import deliver, enroll_now, fresh

    team = add_team(session)
    [welcome_id] = enroll_now(engine, stack.settings, MAYA)
    person = maya(session)
    person.paused_at = now()
    talk = Conversation(participant_id=person.id, reason="paused", opened_at=now())
    session.add_all([person, talk])
    session.commit()
    reply = conversations.send_reply(session, stack.settings, conversation=talk,
                                     staff=team["coach"], body="Hi Maya, Jo here.", program=None,
                                     moment=now())
    session.commit()
    deliver(engine, redis_conn)
    assert [m.body for m in stack.outbound_to(MAYA)] == ["Hi Maya, Jo here."]
    assert fresh(session, reply.id).provider_sid is not None
    held = fresh(session, welcome_id)  # the automated welcome waits for the resume
    assert held.status == DeliveryStatus.CANCELLED and "paused" in held.error_message
    # STOP arrives after a reply was queued: the reply is never sent.
    late = conversations.send_reply(session, stack.settings, conversation=talk,
                                    staff=team["coach"], body="Are you there?", program=None,
                                    moment=now())
    person = maya(session)
    person.opted_out_at = now()
    session.add(person)
    session.commit()
    deliver(engine, redis_conn)
    assert len(stack.outbound_to(MAYA)) == 1
    stopped = fresh(session, late.id)
    assert stopped.status == DeliveryStatus.CANCELLED and "opted out" in stopped.error_message
