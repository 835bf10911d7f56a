"""Saved replies: coordinators add, edit and remove the texts coaches pick from; each change is
audited by title; a removed reply stays in the table but no coach sees it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlmodel import Session, col, select

from bot.people.saved_replies import SavedReplyError, active_saved_replies, add, edit, remove
from bot.store.support import AuditEvent, SavedReply, Staff

MANAGE = {"admin", "coordinator"}
ORDER = ("analyst", "coach", "coordinator", "admin")  # most restricted first
CALL_BACK = "Thank you for telling us. Someone from the study team will call you today."


def a_reply(session: Session, title: str = "Call back today", body: str = CALL_BACK,
            by: Staff | None = None) -> SavedReply:
    reply = add(session, title=title, body=body, by=by)
    session.commit()
    return reply


def audit_of(session: Session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)
                             .order_by(col(AuditEvent.id))))


ROUTES = [
    ("GET", "/console/replies", {}),
    ("POST", "/console/replies", {"title": "Checking in", "body": "How are you doing today?"}),
    ("POST", "/console/replies/{rid}", {"r{rid}-title": "Call back", "r{rid}-body": CALL_BACK}),
    ("POST", "/console/replies/{rid}/remove", {}),
]


@pytest.mark.parametrize(("method", "path", "data"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_only_coordinators_and_admins_may_manage_saved_replies(
    console_as: Any, session: Session, app: Flask, method: str, path: str, data: dict[str, str],
) -> None:
    rid = a_reply(session).id
    url = path.format(rid=rid)
    form = {k.format(rid=rid): v for k, v in data.items()}
    anonymous = app.test_client().open(url, method=method, data=form)
    assert anonymous.status_code in (302, 400), "signing in comes first"
    seen = {}
    for role in ORDER:
        console = console_as(role)
        response = console.get(url) if method == "GET" else console.post(url, form)
        seen[role] = response.status_code
        assert response.status_code < 500, (role, response.get_data(as_text=True)[:500])
    assert {role for role, status in seen.items() if status != 403} == MANAGE, seen


def test_a_coordinator_adds_a_reply_and_coaches_can_pick_it(
    console_as: Any, session: Session, team: dict[str, Staff]
) -> None:
    page = console_as("coordinator").post(
        "/console/replies", {"title": " Call back today ", "body": CALL_BACK},
        follow_redirects=True).get_data(as_text=True)
    assert "“Call back today” is saved" in page
    assert CALL_BACK in page and "1 text" in page
    (reply,) = active_saved_replies(session)
    assert (reply.title, reply.body, reply.updated_by) == (
        "Call back today", CALL_BACK, team["coordinator"].id)
    (event,) = audit_of(session, "add-saved-reply")
    assert (event.staff_id, event.detail) == (
        team["coordinator"].id, f"saved reply {reply.id}: Call back today")
    assert CALL_BACK not in event.detail  # the log names the reply, never carries its text


def test_editing_a_reply_saves_it_and_says_what_changed(
    console_as: Any, session: Session, team: dict[str, Staff]
) -> None:
    reply = a_reply(session)
    console = console_as("admin")
    better = "Thank you for telling us. Cora from the study team will call you before 5 PM."
    console.post(f"/console/replies/{reply.id}",
                 {f"r{reply.id}-title": "Call back today", f"r{reply.id}-body": better})
    session.expire_all()
    assert session.get(SavedReply, reply.id).body == better  # type: ignore[union-attr]
    (event,) = audit_of(session, "edit-saved-reply")
    assert event.detail == f"saved reply {reply.id}: Call back today (text changed)"
    same = console.post(f"/console/replies/{reply.id}",
                        {f"r{reply.id}-title": "Call back today", f"r{reply.id}-body": better},
                        follow_redirects=True).get_data(as_text=True)
    assert "Nothing changed." in same
    assert len(audit_of(session, "edit-saved-reply")) == 1


def test_a_removed_reply_is_kept_but_no_longer_offered(
    console_as: Any, session: Session, team: dict[str, Staff]
) -> None:
    keep, drop = a_reply(session, "Breathing exercise", "Try breathing in for 4, out for 6."), \
        a_reply(session)
    page = console_as("coordinator").post(f"/console/replies/{drop.id}/remove",
                                          follow_redirects=True).get_data(as_text=True)
    assert "“Call back today” is removed" in page
    assert [r.id for r in active_saved_replies(session)] == [keep.id]
    session.expire_all()
    assert session.get(SavedReply, drop.id).removed_at is not None  # type: ignore[union-attr]
    (event,) = audit_of(session, "remove-saved-reply")
    assert event.detail == f"saved reply {drop.id}: Call back today"
    again = console_as("coordinator").post(f"/console/replies/{drop.id}/remove")
    assert again.status_code == 404
    assert CALL_BACK not in console_as("coordinator").get("/console/replies").get_data(
        as_text=True)


@pytest.mark.parametrize(("title", "body", "error"), [
    ("", CALL_BACK, "Give the reply a title"),
    ("Call back today", "   ", "Write the text the participant will receive."),
    ("Call back today", "x" * 1601, "at most 1600 characters"),
    ("call back TODAY", "Another text", "Another saved reply is called"),
])
def test_a_reply_without_a_title_or_text_too_long_or_named_twice_is_refused(
    console_as: Any, session: Session, title: str, body: str, error: str
) -> None:
    a_reply(session)
    response = console_as("coordinator").post("/console/replies", {"title": title, "body": body})
    assert response.status_code == 400
    assert error in response.get_data(as_text=True)
    assert len(active_saved_replies(session)) == 1
    assert audit_of(session, "add-saved-reply") == []


def test_a_change_without_the_forms_token_is_refused(console_as: Any, session: Session) -> None:
    reply = a_reply(session)
    console = console_as("coordinator")
    added = console.client.post("/console/replies", data={"title": "New", "body": "Hello"})
    removed = console.client.post(f"/console/replies/{reply.id}/remove")
    assert (added.status_code, removed.status_code) == (400, 400)
    assert [r.id for r in active_saved_replies(session)] == [reply.id]


def test_replies_are_offered_by_title_and_two_live_ones_never_share_a_title(
    session: Session,
) -> None:
    later = a_reply(session, "welcome back", "Good to hear from you again.")
    first = a_reply(session, "After a missed call", "Sorry we missed you. We will try again.")
    assert [r.id for r in active_saved_replies(session)] == [first.id, later.id]
    with pytest.raises(SavedReplyError):
        add(session, title="Welcome Back", body="Hi", by=None)
    assert edit(session, reply=later, title="welcome back", body="Good to hear from you.",
                by=None) == ["text"]
    remove(session, reply=later)
    session.commit()
    assert add(session, title="Welcome back", body="Hi again", by=None).id is not None


def test_only_coordinators_and_admins_see_saved_replies_in_the_navigation(
    console_as: Any,
) -> None:
    for role in ORDER:
        page = console_as(role).get("/console/account").get_data(as_text=True)
        assert ('href="/console/replies"' in page) is (role in MANAGE), role
