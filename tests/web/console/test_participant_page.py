"""A participant's page as each role sees it, and what coordinators and coaches do there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.care.programs import load_programs
from bot.participants.enrollment import enroll
from bot.store.models import Alert, ConsentEvent, Delivery, DeliveryStatus, Participant
from bot.store.support import AuditEvent, StaffNote
from tests.conftest import ROOT
from tests.people.factories import PHONE, participant_with_story
from tests.web.console.conftest import Console

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 09:00 in Chicago
CRISIS_TEXT = "i want to die"


@pytest.fixture
def person(session: Session, team: Any) -> Participant:
    return participant_with_story(session, start=START)


def audit_of(session: Session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def test_a_coach_reads_the_whole_story_in_the_participants_local_time(
    console_as: Any, person: Participant, session: Session
) -> None:
    coach: Console = console_as("coach")
    page = coach.get(f"/console/participants/{person.id}").get_data(as_text=True)
    assert "+•••••••0123" in page and "+1 415-555-0123" not in page
    assert CRISIS_TEXT in page and "Crisis language" in page
    assert "Tip 1: take a slow breath" in page
    # The first tip went out at 17:00 UTC: 11:00 in Chicago, under Monday 2 March.
    assert "Mon 2 Mar 2026" in page and ">11:00</time>" in page
    assert "America/Chicago (C" in page
    [view] = audit_of(session, "view-history")
    assert view.participant_id == person.id and view.actor == "cole@clinic.example"


def test_revealing_the_number_shows_it_and_writes_the_view_to_the_audit_log(
    console_as: Any, person: Participant, session: Session
) -> None:
    coach: Console = console_as("coach")
    page = coach.post(f"/console/participants/{person.id}/reveal").get_data(as_text=True)
    assert "+1 415-555-0123" in page
    [reveal] = audit_of(session, "view-number")
    assert (reveal.participant_id, reveal.actor) == (person.id, "cole@clinic.example")
    assert PHONE not in reveal.detail


def test_an_analyst_sees_neither_the_number_nor_any_text(
    console_as: Any, person: Participant, session: Session
) -> None:
    analyst: Console = console_as("analyst")
    page = analyst.get(f"/console/participants/{person.id}").get_data(as_text=True)
    assert "0123" not in page and "Hidden: de-identified view" in page
    assert CRISIS_TEXT not in page and "slow breath" not in page and "it was ok" not in page
    assert "Text not shown: de-identified view." in page
    assert "<span>value</span> 1" in page  # the answers, as numbers, stay: they are the data
    assert analyst.post(f"/console/participants/{person.id}/reveal").status_code == 403
    assert analyst.get("/console/participants?number=0123").status_code == 403
    [view] = audit_of(session, "view-history")
    assert view.detail == "de-identified"


def test_an_analyst_granted_message_text_reads_it_but_still_no_number(
    console_as: Any, person: Participant, team: Any, session: Session
) -> None:
    team["analyst"].sees_bodies = True
    session.add(team["analyst"])
    session.commit()
    page = console_as("analyst").get(f"/console/participants/{person.id}").get_data(as_text=True)
    assert CRISIS_TEXT in page and "0123" not in page


def test_search_finds_by_id_number_digits_program_and_status(
    console_as: Any, person: Participant, session: Session
) -> None:
    other = participant_with_story(session, start=START, phone="+14155550188")
    coach: Console = console_as("coach")
    by_id = coach.get(f"/console/participants?id={other.id}")
    assert by_id.headers["Location"] == f"/console/participants/{other.id}"
    by_number = coach.get("/console/participants?number=(415) 555-0188")
    assert by_number.headers["Location"] == f"/console/participants/{other.id}"
    digits = coach.get("/console/participants?number=0123").get_data(as_text=True)
    assert f"Participant {person.id}<" in digits and f"Participant {other.id}<" not in digits
    paused = coach.get("/console/participants?status=paused").get_data(as_text=True)
    assert "2 found" in paused
    assert "0 found" in coach.get("/console/participants?status=opted_out").get_data(
        as_text=True)
    bad = coach.get("/console/participants?number=12")
    assert bad.status_code == 400 and "last four digits" in bad.get_data(as_text=True)
    assert [e.detail for e in audit_of(session, "search-number")] == [
        "by whole number: 1 found", "by last digits: 1 found"]


def test_a_coordinator_resumes_with_a_reason_and_settles_the_crisis_alert(
    console_as: Any, person: Participant, session: Session
) -> None:
    coordinator: Console = console_as("coordinator")
    refused = coordinator.post(f"/console/participants/{person.id}/resume", {"resume-reason": ""})
    assert refused.status_code == 400
    done = coordinator.post(f"/console/participants/{person.id}/resume",
                            {"resume-reason": "called her, safe", "resolve_crisis": "yes"})
    assert done.status_code == 302
    session.expire_all()
    assert session.get(Participant, person.id).paused_at is None  # type: ignore[union-attr]
    assert session.exec(select(Alert.resolved_at)).one() is not None
    assert session.exec(select(ConsentEvent.via).where(
        ConsentEvent.kind == "resumed")).one() == "called her, safe"
    [resumed] = audit_of(session, "resume")
    assert resumed.detail == "called her, safe; 1 crisis alert(s) resolved"


def test_a_coordinator_pauses_and_pending_messages_are_cancelled(
    console_as: Any, session: Session, team: Any
) -> None:
    person = participant_with_story(session, start=START)
    person.paused_at = None
    session.add(person)
    session.commit()
    coordinator: Console = console_as("coordinator")
    coordinator.post(f"/console/participants/{person.id}/pause", {"pause-reason": "in hospital"})
    session.expire_all()
    assert session.get(Participant, person.id).paused_at is not None  # type: ignore[union-attr]
    pending = session.exec(select(Delivery.status).where(
        Delivery.participant_id == person.id, col(Delivery.sent_at).is_(None))).all()
    assert pending == [DeliveryStatus.CANCELLED]
    assert [e.detail for e in audit_of(session, "pause")] == ["in hospital"]


def test_stopping_all_messages_needs_the_confirmation_and_records_an_opt_out(
    console_as: Any, person: Participant, session: Session
) -> None:
    coordinator: Console = console_as("coordinator")
    url = f"/console/participants/{person.id}/stop"
    assert coordinator.post(url, {"stop-reason": "asked by phone"}).status_code == 400
    session.expire_all()
    assert session.get(Participant, person.id).opted_out_at is None  # type: ignore[union-attr]
    coordinator.post(url, {"stop-reason": "asked by phone", "stop-confirm": "y"})
    session.expire_all()
    assert session.get(Participant, person.id).opted_out_at is not None  # type: ignore[union-attr]
    page = coordinator.get(f"/console/participants/{person.id}").get_data(as_text=True)
    assert "Opted out" in page and "Stop all messages</summary>" not in page
    assert [e.detail for e in audit_of(session, "opt-out")] == ["asked by phone"]


def test_a_coach_adds_a_note_that_only_staff_see(console_as: Any, person: Participant,
                                                 session: Session) -> None:
    coach: Console = console_as("coach")
    coach.post(f"/console/participants/{person.id}/notes", {"body": "Prefers texts after 6pm."})
    assert session.exec(select(StaffNote.body)).all() == ["Prefers texts after 6pm."]
    page = coach.get(f"/console/participants/{person.id}").get_data(as_text=True)
    assert "Prefers texts after 6pm." in page and "by Cole" in page
    assert "Prefers texts" not in console_as("analyst").get(
        f"/console/participants/{person.id}").get_data(as_text=True)
    assert coach.post(f"/console/participants/{person.id}/pause",
                      {"pause-reason": "x" * 5}).status_code == 403


def enrolled(session: Session, program: str, **attributes: str) -> Participant:
    programs = load_programs(ROOT / "narratives")
    person = enroll(session=session, phone="+14155550177", program=programs[program],
                    timezone="America/Chicago", via="cli", attributes=attributes)
    session.commit()
    return person


def local_times(session: Session, person: Participant, zone: str) -> list[str]:
    session.expire_all()
    rows = session.exec(select(Delivery).where(
        Delivery.participant_id == person.id, Delivery.status == DeliveryStatus.SCHEDULED,
        Delivery.kind == "event").order_by(col(Delivery.due_at))).all()
    return [f"{d.due_at.astimezone(ZoneInfo(zone)):%H:%M}" for d in rows]


def test_a_new_time_zone_keeps_each_planned_message_at_its_local_time(
    console_as: Any, session: Session, team: Any
) -> None:
    with freeze_time(START):
        person = enrolled(session, "daily-checkin")
        before = local_times(session, person, "America/Chicago")
        coordinator: Console = console_as("coordinator")
        bad = coordinator.post(f"/console/participants/{person.id}/profile",
                               {"timezone": "Mars/Olympus"})
        assert bad.status_code == 400 and "is not a time zone" in bad.get_data(as_text=True)
        coordinator.post(f"/console/participants/{person.id}/profile",
                         {"timezone": "Europe/Berlin"})
    assert before and local_times(session, person, "Europe/Berlin") == before
    assert session.get(Participant, person.id).timezone == "Europe/Berlin"  # type: ignore[union-attr]
    assert [e.detail for e in audit_of(session, "edit-timezone")] == [
        "America/Chicago → Europe/Berlin"]


def test_a_changed_dose_time_moves_the_messages_timed_by_it(
    console_as: Any, session: Session, team: Any, engine: Engine
) -> None:
    with freeze_time(START):
        person = enrolled(session, "medication-adherence")
        coordinator: Console = console_as("coordinator")
        wrong = coordinator.post(f"/console/participants/{person.id}/profile",
                                 {"timezone": "America/Chicago", "attr-dose_time": "25:00"})
        assert wrong.status_code == 400
    with freeze_time(START + timedelta(days=2)):
        # The hub has started a micro intervention by now, with reminders at dose_time.
        from bot.care import hub

        programs = load_programs(ROOT / "narratives")
        for _ in ("asks the state question", "chooses an intervention"):
            hub.evaluate_participant(engine=engine, programs=programs,
                                     participant_id=person.id or 0)
        timed = set(local_times(session, person, "America/Chicago"))
        coordinator = console_as("coordinator")  # the earlier session has long timed out
        done = coordinator.post(f"/console/participants/{person.id}/profile",
                                {"timezone": "America/Chicago", "attr-dose_time": "20:00"})
        assert done.status_code == 302
        moved = set(local_times(session, person, "America/Chicago"))
    # The daily check at dose_time + 2:00 (the default 09:00, then 20:00); 18:30 is not timed
    # by the dose.
    assert timed == {"11:00", "18:30"}
    assert moved == {"22:00", "18:30"}
    session.expire_all()
    assert session.get(Participant, person.id).attributes == {"dose_time": "20:00"}  # type: ignore[union-attr]
    assert [e.detail for e in audit_of(session, "edit-attributes")] == ["changed: dose_time"]


def test_the_page_of_a_participant_with_a_year_of_history_needs_no_more_queries(
    console_as: Any, session: Session, team: Any, engine: Engine
) -> None:
    from tests.people.test_timeline import counted

    week = participant_with_story(session, start=START, days=7, phone="+14155550166")
    year = participant_with_story(session, start=START, days=365, phone="+14155550155")
    coach: Console = console_as("coach")
    with counted(engine) as few:
        assert coach.get(f"/console/participants/{week.id}").status_code == 200
    with counted(engine) as many:
        page = coach.get(f"/console/participants/{year.id}")
    assert page.status_code == 200 and "Show earlier" in page.get_data(as_text=True)
    assert len(many) == len(few)
    earlier = page.get_data(as_text=True).split('class="button" href="', )[-1].split('"')[0]
    older = coach.get(earlier.replace("&amp;", "&"))
    assert older.status_code == 200 and "Back to the newest" in older.get_data(as_text=True)
