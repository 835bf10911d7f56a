"""The alerts pages: open alerts crisis first, then oldest; one alert with everyone who was told;
a coach acknowledges (escalation stops, the coach is named), a coordinator resolves with a
note; an analyst sees neither numbers nor texts. And, in a real Chromium, Acknowledge clicked."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlmodel import Session, col, select

from bot.clock import now
from bot.people.escalation import notify_due
from bot.people.notifications import alert_link
from bot.settings import Settings
from bot.store.models import Alert, InboundMessage
from bot.store.support import AuditEvent, Notification, Staff, StaffNote
from tests.people.factories import PHONE, TEAM, participant_with_story
from tests.web.console.test_console_browser import WIDTHS, signed_in

ALL = {"admin", "coordinator", "coach", "analyst"}
REPLY = {"admin", "coordinator", "coach"}
MANAGE = {"admin", "coordinator"}
ORDER = ("analyst", "coach", "coordinator", "admin")  # most restricted first
START = datetime(2026, 3, 2, 15, tzinfo=UTC)
ONCALL = "+14155550101"  # the first on-call number of the rota
STRANGER = "+14155550199"  # texts crisis language without being enrolled


def crisis_alert(session: Session) -> Alert:
    """Participant 1's crisis alert (from their story), one round sent, the next one due."""
    person = participant_with_story(session, start=START)
    alert = session.exec(select(Alert).where(Alert.participant_id == person.id)).one()
    alert.escalation_round = 1
    alert.next_escalation_at = alert.created_at + timedelta(minutes=10)
    session.add(alert)
    session.add(Notification(alert_id=alert.id or 0, channel="sms", target=ONCALL, round=0,
                             created_at=alert.created_at, sent_at=alert.created_at,
                             status="sent", provider_sid="SM" + "1" * 32))
    session.add(Notification(alert_id=alert.id or 0, channel="email",
                             target="team@clinic.example", round=0, created_at=alert.created_at,
                             status="failed", error="refused: 550 mailbox unavailable"))
    session.commit()
    return alert


def fresh(session: Session, alert_id: int) -> Alert:
    session.expire_all()
    found = session.get(Alert, alert_id)
    assert found is not None
    return found


def audit_of(session: Session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)
                             .order_by(col(AuditEvent.id))))


ROUTES = [
    ("GET", "/console/alerts", {}, ALL),
    ("GET", "/console/alerts?show=resolved", {}, ALL),
    ("GET", "/console/alerts/{aid}", {}, ALL),
    ("POST", "/console/alerts/{aid}/acknowledge", {}, REPLY),
    ("POST", "/console/alerts/{aid}/resolve", {"note": "Called: safe, with family tonight."},
     MANAGE),
]


@pytest.mark.parametrize(("method", "path", "data", "allowed"), ROUTES,
                         ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_each_role_may_use_an_alert_route_only_if_its_role_allows_it(
    console_as: Any, session: Session, app: Flask, method: str, path: str,
    data: dict[str, str], allowed: set[str],
) -> None:
    url = path.format(aid=crisis_alert(session).id)
    anonymous = app.test_client().open(url, method=method, data=data)
    assert anonymous.status_code in (302, 400), "signing in comes first"
    seen = {}
    for role in ORDER:
        console = console_as(role)
        response = console.get(url) if method == "GET" else console.post(url, data)
        seen[role] = response.status_code
        assert response.status_code < 500, (role, response.get_data(as_text=True)[:500])
    assert {role for role, status in seen.items() if status != 403} == allowed, seen


def test_open_alerts_come_crisis_first_then_whoever_has_waited_longest(
    console_as: Any, session: Session
) -> None:
    newer_crisis = crisis_alert(session)
    older_human = Alert(kind="human", participant_id=newer_crisis.participant_id,
                        created_at=START - timedelta(days=2))
    older_crisis = Alert(kind="crisis", category="self-harm",
                         participant_id=newer_crisis.participant_id,
                         created_at=START - timedelta(days=1))
    newest_human = Alert(kind="human", created_at=START + timedelta(days=9))
    settled = Alert(kind="crisis", created_at=START - timedelta(days=5), resolved_at=START)
    session.add_all([older_human, older_crisis, newest_human, settled])
    session.commit()
    page = console_as("coach").get("/console/alerts").get_data(as_text=True)
    shown = [int(n) for n in re.findall(r"Alert (\d+)</a>", page)]
    assert shown == [older_crisis.id, newer_crisis.id, older_human.id, newest_human.id]
    assert "2 open crisis alerts, 2 other" in page
    resolved = console_as("coach").get("/console/alerts?show=resolved").get_data(as_text=True)
    assert [int(n) for n in re.findall(r"Alert (\d+)</a>", resolved)] == [settled.id]


def test_acknowledging_stops_escalation_and_names_the_coach(
    console_as: Any, session: Session, team: dict[str, Staff], settings: Settings, engine: Any
) -> None:
    alert = crisis_alert(session)
    second = Alert(kind="crisis", participant_id=alert.participant_id,
                   created_at=alert.created_at + timedelta(minutes=3),
                   next_escalation_at=alert.created_at + timedelta(minutes=3))
    session.add(second)
    session.commit()
    before = now()
    response = console_as("coach").post(f"/console/alerts/{alert.id}/acknowledge",
                                        follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "escalation has stopped" in page
    for settled in (fresh(session, alert.id or 0), fresh(session, second.id or 0)):
        assert settled.acknowledged_by == TEAM["coach"]
        assert settled.acknowledged_at is not None and before <= settled.acknowledged_at <= now()
        assert settled.next_escalation_at is None
    (event,) = audit_of(session, "acknowledge-alert")
    assert (event.staff_id, event.participant_id) == (team["coach"].id, alert.participant_id)
    assert event.detail == f"alert {alert.id}"
    # The dispatcher's next tick, an hour on, finds nothing to escalate and texts nobody.
    rota = replace(settings, oncall_phones=(ONCALL,))
    assert notify_due(engine, rota, now() + timedelta(hours=1),
                      sms=lambda _: pytest.fail("nothing may be sent")) == 0
    assert "by Cole" in page


def test_a_second_acknowledgement_keeps_the_first(console_as: Any, session: Session) -> None:
    alert = crisis_alert(session)
    console_as("coach").post(f"/console/alerts/{alert.id}/acknowledge")
    page = console_as("coordinator").post(f"/console/alerts/{alert.id}/acknowledge",
                                          follow_redirects=True).get_data(as_text=True)
    assert "acknowledged already by Cole" in page
    assert fresh(session, alert.id or 0).acknowledged_by == TEAM["coach"]
    assert len(audit_of(session, "acknowledge-alert")) == 1


def test_an_acknowledgement_without_the_forms_token_is_refused_and_changes_nothing(
    console_as: Any, session: Session
) -> None:
    alert = crisis_alert(session)
    console = console_as("coach")
    response = console.client.post(f"/console/alerts/{alert.id}/acknowledge")
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    forged = console.client.post(f"/console/alerts/{alert.id}/resolve",
                                 data={"note": "x" * 10, "csrf_token": "forged"})
    assert forged.status_code == 400
    unchanged = fresh(session, alert.id or 0)
    assert unchanged.acknowledged_at is None and unchanged.next_escalation_at is not None
    assert unchanged.resolved_at is None


def test_resolving_needs_a_note_and_keeps_it_in_the_audit_log_and_the_timeline(
    console_as: Any, session: Session, team: dict[str, Staff]
) -> None:
    alert = crisis_alert(session)
    console = console_as("coordinator")
    empty = console.post(f"/console/alerts/{alert.id}/resolve", {"note": "  "})
    assert empty.status_code == 400
    assert fresh(session, alert.id or 0).resolved_at is None
    note = "Called: safe, staying with her sister tonight."
    page = console.post(f"/console/alerts/{alert.id}/resolve", {"note": note},
                        follow_redirects=True).get_data(as_text=True)
    resolved = fresh(session, alert.id or 0)
    assert resolved.resolved_at is not None and resolved.next_escalation_at is None
    (event,) = audit_of(session, "resolve-alert")
    assert (event.staff_id, event.detail) == (team["coordinator"].id, f"alert {alert.id}: {note}")
    (kept,) = session.exec(select(StaffNote)).all()
    assert kept.participant_id == alert.participant_id and note in kept.body
    assert note in page and "stay paused" in page
    again = console.post(f"/console/alerts/{alert.id}/resolve", {"note": "twice"},
                         follow_redirects=True).get_data(as_text=True)
    assert "resolved already" in again
    assert len(audit_of(session, "resolve-alert")) == 1


def test_the_alert_page_shows_who_was_told_with_on_call_numbers_masked(
    console_as: Any, session: Session, app: Flask, settings: Settings
) -> None:
    alert = crisis_alert(session)
    alert.next_escalation_at = now() + timedelta(minutes=4)
    session.add(alert)
    session.commit()
    app.config["TEND"] = replace(settings, oncall_phones=(ONCALL,))
    page = console_as("coach").get(f"/console/alerts/{alert.id}").get_data(as_text=True)
    assert "+•••••••0101" in page and ONCALL not in page
    assert "team@clinic.example" in page and "550 mailbox unavailable" in page
    assert "the next goes out" in page  # nobody has acknowledged: the next round's time shows
    assert "i want to die" in page  # the text that raised it, for those who read messages
    assert "+•••••••0123" in page and PHONE not in page  # the participant's number, masked
    (event,) = audit_of(session, "view-alert")
    assert event.detail == f"alert {alert.id}"


def test_a_crisis_nobody_can_be_told_about_says_so(console_as: Any, session: Session) -> None:
    person = participant_with_story(session, start=START)  # no on-call number, email or hook
    alert = session.exec(select(Alert).where(Alert.participant_id == person.id)).one()
    coach = console_as("coach")
    assert "No notification channel is set." in coach.get("/console/alerts").get_data(
        as_text=True)
    page = coach.get(f"/console/alerts/{alert.id}").get_data(as_text=True)
    assert "Nobody has been told:" in page


def test_an_analyst_sees_no_number_and_no_text(console_as: Any, session: Session) -> None:
    alert = crisis_alert(session)
    stranger = InboundMessage(message_sid="SM" + "9" * 32, from_phone=STRANGER,
                              body="nobody would miss me", intent="crisis", received_at=START)
    session.add(stranger)
    session.flush()
    unenrolled = Alert(kind="crisis", inbound_message_id=stranger.id, created_at=START,
                       detail="suicide: matched 'nobody would miss me'")
    session.add(unenrolled)
    session.commit()
    analyst = console_as("analyst")
    pages = [analyst.get(path).get_data(as_text=True) for path in (
        "/console/alerts", f"/console/alerts/{alert.id}", f"/console/alerts/{unenrolled.id}")]
    for page in pages:
        assert "•0123" not in page and "•0199" not in page
        assert PHONE not in page and STRANGER not in page
        assert "want to die" not in page and "miss me" not in page
    assert "De-identified view" in pages[1] and "An unenrolled number" in pages[2]
    assert [e.detail for e in audit_of(session, "view-alert")] == [
        f"alert {alert.id}; de-identified", f"alert {unenrolled.id}; de-identified"]
    coach = console_as("coach").get(f"/console/alerts/{unenrolled.id}").get_data(as_text=True)
    assert "+•••••••0199" in coach and "nobody would miss me" in coach


def test_the_on_call_text_links_to_this_alerts_page(app: Flask, settings: Settings) -> None:
    with app.test_request_context():
        from flask import url_for

        assert alert_link(settings, 12) == settings.public_base_url + url_for(
            "console.alert", alert_id=12)


def test_every_role_finds_alerts_in_the_navigation(console_as: Any) -> None:
    for role in ORDER:
        page = console_as(role).get("/console/alerts").get_data(as_text=True)
        assert re.search(r'<a href="/console/alerts" aria-current="page">Alerts</a>', page)


# --- in a real browser ------------------------------------------------------------------------


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TEND_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.browser
def test_a_coach_opens_the_alert_from_the_list_and_acknowledges_it(
    browser: Any, app: Flask, live_server: Any, session: Session, team: dict[str, Staff],
    tmp_path: Path,
) -> None:
    alert = crisis_alert(session)
    url = live_server(app).url
    page = signed_in(browser, url, "coach", WIDTHS["desktop"])
    page.get_by_role("link", name="Alerts").click()
    page.screenshot(path=shots(tmp_path) / "alerts-desktop.png", full_page=True)
    page.get_by_role("link", name=re.compile(rf"Alert {alert.id}$")).click()
    page.wait_for_url(re.compile(rf"/console/alerts/{alert.id}$"))
    assert page.get_by_text("Nobody has acknowledged this yet.").is_visible()
    page.screenshot(path=shots(tmp_path) / "alert-desktop.png", full_page=True)
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_selector(".flash-success")
    assert "escalation has stopped" in page.locator(".flash-success").inner_text()
    assert page.get_by_role("button", name="Acknowledge").count() == 0
    assert "by Cole" in page.locator(".facts").inner_text()
    page.screenshot(path=shots(tmp_path) / "alert-acknowledged-desktop.png", full_page=True)
    acknowledged = fresh(session, alert.id or 0)
    assert acknowledged.acknowledged_by == TEAM["coach"]
    assert acknowledged.next_escalation_at is None
    page.close()


def some_of_everything(session: Session, team: dict[str, Staff]) -> Alert:
    """An open crisis alert with its notifications, a request for a person, two saved replies
    and a few weeks of conversations: what the pages show on an ordinary day."""
    from bot.people.saved_replies import add
    from bot.store.support import Conversation

    alert = crisis_alert(session)
    session.add(Alert(kind="human", participant_id=alert.participant_id,
                      created_at=now() - timedelta(hours=3)))
    add(session, title="Call back today", by=team["coordinator"],
        body="Thank you for telling us. Someone from the study team will call you today.")
    add(session, title="Breathing exercise", by=team["coordinator"],
        body="If it helps right now: breathe in for 4, hold for 4, out for 6. Repeat 5 times.")
    for day in range(0, 40, 3):
        at = now() - timedelta(days=day, hours=2)
        crisis = day % 2 == 0
        session.add(Conversation(
            reason="crisis" if crisis else "human", severity=0 if crisis else 1, opened_at=at,
            target_at=at + timedelta(minutes=5 if crisis else 240), assigned_to=team["coach"].id,
            first_reply_at=at + timedelta(minutes=3 + day), first_reply_by=team["coach"].id,
            resolved_at=at + timedelta(hours=1 + day), resolved_by=team["coordinator"].id))
    session.commit()
    return alert


MY_PAGES = {
    "alerts": ("coach", "/console/alerts"),
    "alert": ("coordinator", "/console/alerts/{aid}"),
    "alert-analyst": ("analyst", "/console/alerts/{aid}"),
    "saved-replies": ("coordinator", "/console/replies"),
    "response-times": ("coordinator", "/console/reports/response-times"),
}


@pytest.mark.browser
@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_the_alert_reply_and_report_pages_fit_the_screen(
    browser: Any, app: Flask, live_server: Any, session: Session, team: dict[str, Staff],
    tmp_path: Path, width: str,
) -> None:
    aid = some_of_everything(session, team).id
    url = live_server(app).url
    pages: dict[str, Any] = {}
    for name, (role, path) in MY_PAGES.items():
        page = pages.get(role) or signed_in(browser, url, role, WIDTHS[width])
        pages[role] = page
        page.goto(url + path.format(aid=aid))
        page.screenshot(path=shots(tmp_path) / f"{name}-{width}.png", full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} is {overflow}px wider than a {width} screen"
    for page in pages.values():
        page.close()
