"""The admin's pages: staff accounts (add, role, unlock, second factor, remove), the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.people import staff
from bot.store.support import AuditEvent, Staff
from tests.people.factories import PASSWORD, TEAM, participant_with_story
from tests.web.console.conftest import Console, sign_in


def fresh(session: Session, person: Staff) -> Staff:
    session.expire_all()
    found = session.get(Staff, person.id)
    assert found is not None
    return found


def test_an_admin_adds_a_coach_who_can_then_sign_in(console_as: Any, app: Any,
                                                    session: Session) -> None:
    admin: Console = console_as("admin")
    added = admin.post("/console/staff", {"email": "Nell@Clinic.Example", "name": "Nell",
                                          "role": "coach", "password": PASSWORD})
    assert added.status_code == 302
    page = admin.get("/console/staff").get_data(as_text=True)
    assert "nell@clinic.example can now sign in as coach." in page
    assert sign_in(app.test_client(), "nell@clinic.example").status_code == 302
    again = admin.post("/console/staff", {"email": "nell@clinic.example", "role": "coach",
                                          "password": PASSWORD})
    assert again.status_code == 400 and "already has an account" in again.get_data(as_text=True)
    short = admin.post("/console/staff", {"email": "o@clinic.example", "role": "coach",
                                          "password": "short"})
    assert short.status_code == 400
    assert "A password needs 12 to 256 characters." in short.get_data(as_text=True)
    logged = session.exec(select(AuditEvent).where(AuditEvent.action == "add-staff")).one()
    assert (logged.actor, logged.detail) == (TEAM["admin"], "nell@clinic.example as coach")


def test_an_admin_changes_a_role_and_grants_an_analyst_message_text(
    console_as: Any, team: dict[str, Staff], session: Session
) -> None:
    admin: Console = console_as("admin")
    coach, analyst = team["coach"], team["analyst"]
    admin.post(f"/console/staff/{coach.id}/role", {f"s{coach.id}-role": "coordinator"})
    assert fresh(session, coach).role == "coordinator"
    admin.post(f"/console/staff/{analyst.id}/role",
               {f"s{analyst.id}-role": "analyst", f"s{analyst.id}-sees_bodies": "y"})
    assert fresh(session, analyst).sees_bodies
    details = session.exec(select(AuditEvent.detail).where(
        AuditEvent.action == "change-role").order_by(col(AuditEvent.id))).all()
    assert details == ["cole@clinic.example: role coordinator",
                       "ana@clinic.example: role analyst, reads message text"]


def test_the_only_admin_cannot_demote_or_remove_themself(
    console_as: Any, team: dict[str, Staff], session: Session
) -> None:
    admin: Console = console_as("admin")
    me = team["admin"]
    admin.post(f"/console/staff/{me.id}/role", {f"s{me.id}-role": "coach"})
    assert "is the last admin" in admin.get("/console/staff").get_data(as_text=True)
    admin.post(f"/console/staff/{me.id}/remove")
    assert "cannot remove your own account" in admin.get("/console/staff").get_data(
        as_text=True)
    assert fresh(session, me).role == "admin" and fresh(session, me).removed_at is None


def test_an_admin_unlocks_a_locked_coach_and_turns_off_a_lost_second_factor(
    console_as: Any, app: Any, team: dict[str, Staff], session: Session
) -> None:
    coach = team["coach"]
    client = app.test_client()
    for _ in range(5):
        sign_in(client, TEAM["coach"], "wrong guess here")
    assert "locked" in sign_in(client, TEAM["coach"]).get_data(as_text=True)
    coach = fresh(session, coach)
    coach.totp_secret = staff.new_totp_secret()
    session.add(coach)
    session.commit()
    admin: Console = console_as("admin")
    page = admin.get("/console/staff").get_data(as_text=True)
    assert "locked until" in page and "Turn off 2-step" in page
    admin.post(f"/console/staff/{coach.id}/unlock")
    admin.post(f"/console/staff/{coach.id}/totp")
    assert sign_in(client, TEAM["coach"]).headers["Location"] == "/console/"


def test_a_removed_coach_stays_in_the_list_and_cannot_sign_in(
    console_as: Any, app: Any, team: dict[str, Staff], session: Session
) -> None:
    admin: Console = console_as("admin")
    admin.post(f"/console/staff/{team['coach'].id}/remove")
    assert fresh(session, team["coach"]).removed_at is not None
    assert "removed" in admin.get("/console/staff").get_data(as_text=True)
    assert sign_in(app.test_client(), TEAM["coach"]).status_code == 401


def test_the_audit_log_filters_by_person_participant_and_action(
    console_as: Any, team: dict[str, Staff], session: Session
) -> None:
    first = participant_with_story(session, start=datetime(2026, 3, 2, 15, tzinfo=UTC))
    second = participant_with_story(session, start=datetime(2026, 3, 2, 15, tzinfo=UTC),
                                    phone="+14155550188")
    coach: Console = console_as("coach")
    coach.get(f"/console/participants/{first.id}")
    coach.post(f"/console/participants/{first.id}/reveal")
    console_as("coordinator").get(f"/console/participants/{second.id}")
    admin: Console = console_as("admin")

    def rows(query: str) -> list[str]:
        page = admin.get(f"/console/audit?{query}").get_data(as_text=True)
        body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
        return [row for row in body.split("<tr>")[1:]]

    # The page, then the page again with the number shown (a reveal without JavaScript).
    assert len(rows(f"staff={team['coach'].id}&action=view-history")) == 2
    assert len(rows(f"participant={first.id}")) == 3
    reveals = rows("action=view-number")
    assert len(reveals) == 1 and TEAM["coach"] in reveals[0] and f"#{first.id}" in reveals[0]
    assert len(rows(f"participant={second.id}&staff={team['coach'].id}")) == 0
    signed_in = rows("action=sign-in")
    assert len(signed_in) == 3 and TEAM["admin"] in signed_in[0]  # newest first
