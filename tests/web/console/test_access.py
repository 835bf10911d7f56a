"""Every console route, for every role: who may, who is refused (403), and that signing in comes
first. The table must name every route the console has."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlmodel import Session

from bot.store.models import Alert
from bot.store.support import Conversation, SavedReply, Staff
from tests.people.factories import PASSWORD, participant_with_story

ALL = {"admin", "coordinator", "coach", "analyst"}
IDENTIFY = {"admin", "coordinator", "coach"}
MANAGE = {"admin", "coordinator"}
ADMIN = {"admin"}
# (method, path, form data, roles allowed); {pid} is a participant, {coach} and {analyst} staff.
ROUTES: list[tuple[str, str, dict[str, str], set[str]]] = [
    ("GET", "/console/", {}, ALL),
    ("GET", "/console/participants", {}, ALL),
    ("GET", "/console/participants?status=paused&program=daily-checkin", {}, ALL),
    ("GET", "/console/participants?number=0123", {}, IDENTIFY),
    ("GET", "/console/participants/{pid}", {}, ALL),
    ("POST", "/console/participants/{pid}/reveal", {}, IDENTIFY),
    ("POST", "/console/participants/{pid}/notes", {"body": "Called: safe."}, IDENTIFY),
    ("POST", "/console/participants/{pid}/pause", {"pause-reason": "on holiday"}, MANAGE),
    ("POST", "/console/participants/{pid}/resume", {"resume-reason": "spoke, safe"}, MANAGE),
    ("POST", "/console/participants/{pid}/profile", {"timezone": "America/Denver"}, MANAGE),
    ("POST", "/console/participants/{pid}/stop",
     {"stop-reason": "asked by phone", "stop-confirm": "y"}, MANAGE),
    ("GET", "/console/account", {}, ALL),
    ("POST", "/console/account/totp/enable", {"code": "000000"}, ALL),
    ("POST", "/console/account/totp/disable", {"password": "wrong"}, ALL),
    ("GET", "/console/staff", {}, ADMIN),
    ("POST", "/console/staff",
     {"email": "nell@clinic.example", "role": "coach", "password": PASSWORD}, ADMIN),
    ("POST", "/console/staff/{coach}/role", {"s{coach}-role": "coordinator"}, ADMIN),
    ("POST", "/console/staff/{coach}/unlock", {}, ADMIN),
    ("POST", "/console/staff/{coach}/totp", {}, ADMIN),
    ("POST", "/console/staff/{analyst}/remove", {}, ADMIN),
    ("GET", "/console/audit?action=view-number", {}, ADMIN),
    ("GET", "/console/inbox", {}, IDENTIFY),
    ("GET", "/console/inbox?folder=unassigned&part=list", {}, IDENTIFY),
    ("GET", "/console/conversations/{cid}", {}, IDENTIFY),
    ("POST", "/console/conversations/{cid}/reply", {"body": "Hi, it's Sam from the study."},
     IDENTIFY),
    ("POST", "/console/conversations/{cid}/note", {"body": "Left a voicemail."}, IDENTIFY),
    ("POST", "/console/conversations/{cid}/assign", {"staff_id": "{coach}"}, IDENTIFY),
    ("POST", "/console/conversations/{cid}/resolve", {"outcome": "No action needed"}, IDENTIFY),
    ("POST", "/console/participants/{pid}/conversation", {}, IDENTIFY),
    ("GET", "/console/participants/new", {}, MANAGE),
    ("POST", "/console/participants/new", {"phone": "415 555 0199", "program": "daily-checkin",
                                           "timezone": "America/Chicago", "consent": "y"}, MANAGE),
    ("GET", "/console/participants/import", {}, MANAGE),
    ("POST", "/console/participants/import", {"program": "daily-checkin"}, MANAGE),
    ("GET", "/console/participants/import/progress?run=0123456789abcdef", {}, MANAGE),
    ("GET", "/console/participants/import/failed.csv?run=0123456789abcdef", {}, MANAGE),
    ("GET", "/console/participants/import/example.csv?program=daily-checkin", {}, MANAGE),
    ("GET", "/console/alerts", {}, ALL),
    ("GET", "/console/alerts?show=resolved", {}, ALL),
    ("GET", "/console/alerts/{aid}", {}, ALL),
    ("POST", "/console/alerts/{aid}/acknowledge", {}, IDENTIFY),
    ("POST", "/console/alerts/{aid}/resolve", {"note": "Called: safe, with family."}, MANAGE),
    ("GET", "/console/replies", {}, MANAGE),
    ("POST", "/console/replies", {"title": "Call back", "body": "We'll call you today."},
     MANAGE),
    ("POST", "/console/replies/{rid}", {"r{rid}-title": "Hello", "r{rid}-body": "Hi there."},
     MANAGE),
    ("POST", "/console/replies/{rid}/remove", {}, MANAGE),
    ("GET", "/console/reports/response-times", {}, MANAGE),
    ("POST", "/console/logout", {}, ALL),
]
PUBLIC = {"/console/login", "/console/login/code", "/console/static/<path:filename>"}
# Most restricted first: an action done by one role does not hide a refusal for the next.
ORDER = ("analyst", "coach", "coordinator", "admin")


def fill(text: str, ids: dict[str, Any]) -> str:
    return text.format(**ids)


@pytest.mark.parametrize(("method", "path", "data", "allowed"), ROUTES,
                         ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_each_role_may_use_a_route_only_if_its_role_allows_it(
    console_as: Any, team: dict[str, Staff], session: Session, app: Flask,
    method: str, path: str, data: dict[str, str], allowed: set[str],
) -> None:
    person = participant_with_story(session, start=datetime(2026, 3, 2, 15, tzinfo=UTC))
    talk = Conversation(participant_id=person.id, reason="human", severity=1,
                        opened_at=datetime(2026, 3, 2, 16, tzinfo=UTC))
    alert = Alert(participant_id=person.id, kind="crisis", detail="suicide: matched 'want to die'")
    saved = SavedReply(title="Thanks", body="Thanks for letting us know.",
                       updated_at=datetime(2026, 3, 1, tzinfo=UTC))
    session.add_all([talk, alert, saved])
    session.commit()
    ids = {"pid": person.id, "coach": team["coach"].id, "analyst": team["analyst"].id,
           "cid": talk.id, "aid": alert.id, "rid": saved.id}
    url = fill(path, ids)
    form = {fill(k, ids): fill(v, ids) for k, v in data.items()}
    anonymous = app.test_client().open(url, method=method, data=form)
    assert anonymous.status_code in (302, 400), "signing in comes first"
    if anonymous.status_code == 302:
        assert "/console/login" in anonymous.headers["Location"]
    seen = {}
    for role in ORDER:
        console = console_as(role)
        response = (console.get(url) if method == "GET" else console.post(url, form))
        seen[role] = response.status_code
        assert response.status_code < 500, (role, response.get_data(as_text=True)[:500])
    assert {role for role, status in seen.items() if status != 403} == allowed, seen


def test_the_table_names_every_route_the_console_has(app: Flask) -> None:
    def shape(path: str) -> str:
        return path.split("?")[0].replace("{pid}", "<int:participant_id>").replace(
            "{coach}", "<int:staff_id>").replace("{analyst}", "<int:staff_id>").replace(
            "{cid}", "<int:conversation_id>").replace("{aid}", "<int:alert_id>").replace(
            "{rid}", "<int:reply_id>")

    listed = {(method, shape(path)) for method, path, _, _ in ROUTES}
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/console")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
        if rule.rule not in PUBLIC
    }
    assert routes - listed == set()
