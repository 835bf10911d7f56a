"""Signing in and out of the console: passwords, the lockout, a second factor, the idle timeout,
CSRF on every form, and cookies a browser keeps to itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from flask import Flask
from freezegun import freeze_time
from sqlmodel import Session, col, select

from bot import create_app
from bot.people import staff
from bot.settings import Settings
from bot.store.support import AuditEvent, Staff
from tests.people.factories import PASSWORD, TEAM
from tests.web.console.conftest import Console, csrf_token, sign_in

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def actions(session: Session) -> list[str]:
    session.expire_all()
    return list(session.exec(select(AuditEvent.action).order_by(col(AuditEvent.id))).all())


def test_a_coach_signs_in_and_lands_on_the_participants(app: Flask, team: Any,
                                                        session: Session) -> None:
    client = app.test_client()
    response = sign_in(client, TEAM["coach"])
    assert response.status_code == 302 and response.headers["Location"] == "/console/"
    page = client.get("/console/participants")
    assert page.status_code == 200 and "Sign out" in page.get_data(as_text=True)
    assert actions(session) == ["sign-in"]


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    app: Flask, team: Any, session: Session
) -> None:
    client = app.test_client()
    for email in (TEAM["coach"], "nobody@clinic.example"):
        response = sign_in(client, email, "not the password")
        assert response.status_code == 401
        assert "That email and password do not match an account." in response.get_data(
            as_text=True)
    assert client.get("/console/participants").status_code == 302
    failed = session.exec(select(AuditEvent).where(AuditEvent.action == "sign-in-failed")).all()
    assert [e.actor for e in failed] == [TEAM["coach"], "nobody@clinic.example"]


def test_five_wrong_passwords_lock_the_account_until_fifteen_minutes_pass(
    app: Flask, team: Any
) -> None:
    client = app.test_client()
    with freeze_time(START) as clock:
        for _ in range(4):
            assert "do not match" in sign_in(client, TEAM["coach"], "guess guess!").get_data(
                as_text=True)
        locked = sign_in(client, TEAM["coach"], "guess guess!").get_data(as_text=True)
        assert "locked until Mon 2 Mar 2026, 10:15 EST" in locked
        assert "locked" in sign_in(client, TEAM["coach"]).get_data(as_text=True)
        clock.tick(timedelta(minutes=15, seconds=1))
        assert sign_in(client, TEAM["coach"]).status_code == 302


def test_an_account_with_a_second_factor_asks_for_a_code_before_letting_in(
    app: Flask, team: dict[str, Staff], session: Session
) -> None:
    secret = staff.new_totp_secret()
    with freeze_time(START) as clock:
        staff.enable_totp(session=session, staff=team["coach"], secret=secret,
                          code=pyotp.TOTP(secret).now())
        session.commit()
        clock.tick(timedelta(seconds=31))
        client = app.test_client()
        response = sign_in(client, TEAM["coach"])
        assert response.headers["Location"] == "/console/login/code"
        assert client.get("/console/participants").status_code == 302  # not in yet
        token = csrf_token(client, "/console/login/code")
        wrong = client.post("/console/login/code", data={"code": "000000", "csrf_token": token})
        assert wrong.status_code == 401 and "not right" in wrong.get_data(as_text=True)
        right = client.post("/console/login/code",
                            data={"code": pyotp.TOTP(secret).now(), "csrf_token": token})
        assert right.status_code == 302
        assert client.get("/console/participants").status_code == 200
    assert actions(session)[-2:] == ["sign-in-failed", "sign-in"]


def test_the_code_step_expires_after_five_minutes(app: Flask, team: dict[str, Staff],
                                                  session: Session) -> None:
    secret = staff.new_totp_secret()
    with freeze_time(START) as clock:
        staff.enable_totp(session=session, staff=team["coach"], secret=secret,
                          code=pyotp.TOTP(secret).now())
        session.commit()
        client = app.test_client()
        sign_in(client, TEAM["coach"])
        clock.tick(timedelta(minutes=5, seconds=1))
        assert client.get("/console/login/code").headers["Location"] == "/console/login"


def test_a_coach_turns_on_a_second_factor_from_their_account_page(
    console_as: Any, session: Session
) -> None:
    console: Console = console_as("coach")
    page = console.get("/console/account").get_data(as_text=True)
    assert "otpauth://totp/Tend:cole%40clinic.example?secret=" in page
    secret = page.split("secret=", 1)[1].split("&", 1)[0]
    wrong = console.post("/console/account/totp/enable", {"code": "123456"})
    assert wrong.status_code == 400
    done = console.post("/console/account/totp/enable", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 302
    assert "Two-step sign-in is on" in console.get("/console/account").get_data(as_text=True)
    session.expire_all()
    coach = staff.find(session=session, email=TEAM["coach"])
    assert coach is not None and coach.totp_secret == secret
    assert "enable-totp" in actions(session)


def test_thirty_idle_minutes_sign_a_person_out(app: Flask, team: Any, session: Session) -> None:
    client = app.test_client()
    with freeze_time(START) as clock:
        sign_in(client, TEAM["coach"])
        clock.tick(timedelta(minutes=29))
        assert client.get("/console/participants").status_code == 200  # activity resets it
        clock.tick(timedelta(minutes=29))
        assert client.get("/console/participants").status_code == 200
        clock.tick(timedelta(minutes=30, seconds=1))
        response = client.get("/console/participants")
        assert response.status_code == 302 and "/console/login" in response.headers["Location"]
        assert "signed out after 30 minutes" in client.get("/console/login").get_data(
            as_text=True)
        assert client.get("/console/participants").status_code == 302
    assert actions(session)[-1] == "signed-out-idle"


def test_the_idle_timeout_follows_the_setting(settings: Settings, team: Any) -> None:
    app = create_app(settings.with_overrides(console_idle_minutes=5))
    client = app.test_client()
    with freeze_time(START) as clock:
        sign_in(client, TEAM["coach"])
        clock.tick(timedelta(minutes=5, seconds=1))
        assert client.get("/console/participants").status_code == 302


def test_signing_out_ends_the_session(console_as: Any, session: Session) -> None:
    console: Console = console_as("coach")
    response = console.post("/console/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/console/login"
    assert console.get("/console/participants").status_code == 302
    assert actions(session)[-1] == "sign-out"


def test_a_removed_person_is_signed_out_at_their_next_click(
    console_as: Any, team: dict[str, Staff], session: Session
) -> None:
    console: Console = console_as("coach")
    coach = session.get(Staff, team["coach"].id)
    assert coach is not None
    staff.remove(session=session, staff=coach)
    session.commit()
    assert console.get("/console/participants").status_code == 302


def test_a_new_password_signs_out_every_other_session(
    console_as: Any, team: dict[str, Staff], session: Session
) -> None:
    console: Console = console_as("coach")
    coach = session.get(Staff, team["coach"].id)
    assert coach is not None
    staff.set_password(session=session, staff=coach, password="a fresh long passphrase")
    session.commit()
    assert console.get("/console/participants").status_code == 302


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    console_as: Any, session: Session
) -> None:
    console: Console = console_as("admin")
    for token in (None, "forged-token"):
        data = {"email": "eve@clinic.example", "role": "admin", "password": PASSWORD}
        if token:
            data["csrf_token"] = token
        response = console.client.post("/console/staff", data=data)
        assert response.status_code == 400
        assert "This form has expired" in response.get_data(as_text=True)
    assert staff.find(session=session, email="eve@clinic.example") is None
    login = console.client.post("/console/login",
                                data={"email": TEAM["coach"], "password": PASSWORD})
    assert login.status_code == 400


def test_a_fetch_without_its_csrf_header_is_refused(console_as: Any, team: Any,
                                                    session: Session) -> None:
    from tests.people.factories import participant_with_story

    person = participant_with_story(session, start=START)
    console: Console = console_as("coach")
    response = console.client.post(f"/console/participants/{person.id}/reveal",
                                   headers={"Accept": "application/json"})
    assert response.status_code == 400 and "expired" in response.get_json()["error"]
    ok = console.client.post(f"/console/participants/{person.id}/reveal",
                             headers={"Accept": "application/json",
                                      "X-CSRFToken": console.token})
    assert ok.status_code == 200 and ok.get_json()["e164"] == person.phone


def test_after_signing_in_a_link_leads_back_only_to_the_console(app: Flask, team: Any) -> None:
    client = app.test_client()
    token = csrf_token(client)
    for target, landing in (("/console/account", "/console/account"),
                            ("https://evil.example/", "/console/"),
                            ("//evil.example/console", "/console/")):
        response = client.post("/console/login", data={
            "email": TEAM["coach"], "password": PASSWORD, "next": target, "csrf_token": token})
        assert response.headers["Location"] == landing
        client.post("/console/logout", data={"csrf_token": csrf_token(client, "/console/account")})
        token = csrf_token(client)


def test_console_cookies_are_http_only_same_site_and_secure_in_production(
    settings: Settings, app: Flask, team: Any
) -> None:
    client = app.test_client()
    cookie = client.get("/console/login").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    production = create_app(Settings(**{**settings.__dict__, "env": "production"}))
    cookie = production.test_client().get("/console/login").headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_console_pages_are_never_cached_or_framed(app: Flask) -> None:
    response = app.test_client().get("/console/login")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
