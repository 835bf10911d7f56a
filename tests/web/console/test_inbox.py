"""The inbox and a conversation through the console's own forms: what a coach sees, what a
reply does, the quiet-hours confirmation, and what each view and action leaves in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime

from freezegun import freeze_time
from sqlmodel import Session, col, select

from bot.store.models import Delivery, Participant
from bot.store.support import AuditEvent, Conversation

SAM = "+14155550142"


def opened(text_bot, session: Session, body: str, at: str) -> Conversation:  # type: ignore[no-untyped-def]
    with freeze_time("2026-06-01 14:00:00"):
        text_bot(SAM, "JOIN")
    with freeze_time(at):
        text_bot(SAM, body)
    session.expire_all()
    return session.exec(select(Conversation)).one()


def actions(session: Session) -> list[str]:
    session.expire_all()
    return [e.action for e in session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))]


def test_a_coach_finds_the_crisis_in_the_inbox_and_texts_back(
    text_bot, session, console_as, team
):
    talk = opened(text_bot, session, "I want to die", "2026-06-05 20:00:00")
    with freeze_time("2026-06-05 20:06:00"):
        coach = console_as("coach")
        home = coach.get("/console/")
        assert home.headers["Location"].endswith("/console/inbox")
        page = coach.get("/console/inbox").get_data(as_text=True)
        assert "Crisis" in page and "I want to die" in page and "waiting 6 min" in page
        assert f"/console/conversations/{talk.id}" in page
        thread = coach.get(f"/console/conversations/{talk.id}").get_data(as_text=True)
        assert "I want to die" in thread and "We care about your safety" in thread
        assert "Your first text acknowledges the alert" in thread
        sent = coach.post(f"/console/conversations/{talk.id}/reply",
                          {"body": "Hi Sam, this is Jo from the study team. Are you safe?"})
    assert sent.status_code == 302
    reply = session.exec(select(Delivery).where(Delivery.kind == "staff")).one()
    assert reply.staff_id == team["coach"].id and reply.body.startswith("Hi Sam, this is Jo")
    session.refresh(talk)
    assert talk.first_reply_at == datetime(2026, 6, 5, 20, 6, tzinfo=UTC)
    assert talk.first_reply_by == team["coach"].id
    with freeze_time("2026-06-05 20:07:00"):
        thread = coach.get(f"/console/conversations/{talk.id}?part=thread").get_data(as_text=True)
    assert "Hi Sam, this is Jo" in thread and "queued" in thread
    # The page's own refreshes are the same view: one entry.
    assert actions(session) == ["sign-in", "view-conversation", "send-text"]


def test_inside_quiet_hours_a_reply_needs_a_confirmation(text_bot, session, console_as, team):
    talk = opened(text_bot, session, "can I talk to a person", "2026-06-06 02:30:00")
    with freeze_time("2026-06-06 02:40:00"):  # 22:40 in New York
        coach = console_as("coach")
        page = coach.get(f"/console/conversations/{talk.id}").get_data(as_text=True)
        assert "inside their quiet hours until 08:00" in page
        refused = coach.post(f"/console/conversations/{talk.id}/reply",
                             {"body": "We'll call you in the morning."})
        assert refused.status_code == 409
        assert "Tick to send it now anyway" in refused.get_data(as_text=True)
        assert session.exec(select(Delivery).where(Delivery.kind == "staff")).all() == []
        sent = coach.post(f"/console/conversations/{talk.id}/reply",
                          {"body": "We'll call you in the morning.", "quiet_confirmed": "y"})
    assert sent.status_code == 302
    assert session.exec(select(Delivery).where(Delivery.kind == "staff")).one()
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "send-text")).one()
    assert "inside quiet hours, confirmed" in event.detail


def test_no_reply_box_for_someone_who_opted_out(text_bot, session, console_as, team):
    talk = opened(text_bot, session, "can I talk to a person", "2026-06-05 20:00:00")
    with freeze_time("2026-06-05 20:30:00"):
        text_bot(SAM, "STOP")
        coach = console_as("coach")
        page = coach.get(f"/console/conversations/{talk.id}").get_data(as_text=True)
        assert "They opted out (STOP)" in page and "Send text" not in page
        refused = coach.post(f"/console/conversations/{talk.id}/reply", {"body": "Hello?"})
    assert refused.status_code == 400
    assert session.exec(select(Delivery).where(Delivery.kind == "staff")).all() == []


def test_notes_assignment_and_resolution(text_bot, session, console_as, team):
    talk = opened(text_bot, session, "can I talk to a person", "2026-06-05 20:00:00")
    with freeze_time("2026-06-05 20:10:00"):
        coach = console_as("coach")
        coach.post(f"/console/conversations/{talk.id}/assign", {"staff_id": str(team["coach"].id)})
        mine = coach.get("/console/inbox?folder=mine").get_data(as_text=True)
        assert f"/console/conversations/{talk.id}" in mine and "Assigned to" in mine
        coach.post(f"/console/conversations/{talk.id}/note", {"body": "Left a voicemail."})
        page = coach.get(f"/console/conversations/{talk.id}").get_data(as_text=True)
        assert "Left a voicemail." in page
        bad = coach.post(f"/console/conversations/{talk.id}/resolve", {"outcome": "whatever"})
        assert bad.status_code == 400
        done = coach.post(f"/console/conversations/{talk.id}/resolve",
                          {"outcome": "Called, safe"})
        assert done.headers["Location"].endswith("/console/inbox")
        empty = coach.get("/console/inbox?folder=all").get_data(as_text=True)
    session.refresh(talk)
    assert talk.outcome == "Called, safe" and talk.resolved_by == team["coach"].id
    assert "Nothing waiting here." in empty
    assert {"assign", "add-note", "resolve-conversation"} <= set(actions(session))


def test_a_coach_starts_a_conversation_from_the_participant_page(
    text_bot, session, console_as, team
):
    with freeze_time("2026-06-01 14:00:00"):
        text_bot(SAM, "JOIN")
    person = session.exec(select(Participant)).one()
    coach = console_as("coach")
    page = coach.get(f"/console/participants/{person.id}").get_data(as_text=True)
    assert "Text this participant" in page
    started = coach.post(f"/console/participants/{person.id}/conversation")
    talk = session.exec(select(Conversation)).one()
    assert started.headers["Location"].endswith(f"/console/conversations/{talk.id}#reply")
    assert (talk.reason, talk.assigned_to, talk.waiting_since) == ("staff", team["coach"].id, None)
    again = coach.post(f"/console/participants/{person.id}/conversation")
    assert again.headers["Location"] == started.headers["Location"]  # the open one, not a second


def test_a_reply_without_the_session_s_token_is_refused_and_nothing_is_sent(
    text_bot, session, console_as, team
):
    talk = opened(text_bot, session, "can I talk to a person", "2026-06-05 20:00:00")
    with freeze_time("2026-06-05 20:05:00"):
        coach = console_as("coach")
        forged = coach.client.post(f"/console/conversations/{talk.id}/reply",
                                   data={"body": "Click this link"})
    assert forged.status_code == 400
    assert session.exec(select(Delivery).where(Delivery.kind == "staff")).all() == []
