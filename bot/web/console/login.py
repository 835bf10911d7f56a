"""Signing in (a password, then a code when the account has a second factor) and out."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user

from bot import web
from bot.clock import now
from bot.people import staff
from bot.store.db import session_scope
from bot.store.support import Staff
from bot.web.console import bp
from bot.web.console.auth import begin_session, end_session, me, record, safe_next
from bot.web.console.display import when
from bot.web.console.forms import CodeForm, LoginForm

CODE_STEP_SECONDS = 300  # the code is asked for within five minutes of the password
WRONG = "That email and password do not match an account."


def _refusal(result: staff.SignIn) -> str:
    if result.outcome == "locked":
        return (f"Too many failed attempts: this account is locked until "
                f"{when(result.locked_until)}. Try again then, or ask an admin to unlock it.")
    return WRONG


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm(next=request.args.get("next", ""))
    error = None
    if form.validate_on_submit():
        with session_scope(web.engine()) as db:
            result = staff.authenticate(session=db, email=form.email.data or "",
                                        password=form.password.data or "")
            person = result.staff
            if result.ok and person is not None:
                record(db, "sign-in", person=person)
                begin_session(person)
                return redirect(safe_next(form.next.data))
            if result.outcome == "needs-code" and person is not None:
                session.clear()
                session["pending"] = {"id": person.id, "at": now().timestamp(),
                                      "next": form.next.data or ""}
                return redirect(url_for("console.login_code"))
            record(db, "sign-in-failed", person=person,
                   actor=None if person else (form.email.data or "").strip().lower(),
                   detail="locked" if result.outcome == "locked" else "wrong password")
        error = _refusal(result)
    elif request.method == "POST":
        error = "Enter your email and password."
    status = 200 if error is None else 401
    return render_template("console/login.html", form=form, error=error,
                           title="Sign in"), status


def _pending() -> dict[str, Any] | None:
    pending = session.get("pending")
    if not pending or now().timestamp() - pending.get("at", 0) > CODE_STEP_SECONDS:
        return None
    return pending


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> Any:
    pending = _pending()
    if pending is None:
        session.pop("pending", None)
        flash("Please sign in again.", "info")
        return redirect(url_for("console.login"))
    form = CodeForm()
    error = None
    if form.validate_on_submit():
        with session_scope(web.engine()) as db:
            person = db.get(Staff, pending["id"])
            if person is None:
                return redirect(url_for("console.login"))
            result = staff.verify_code(session=db, staff=person, code=form.code.data or "")
            if result.ok:
                record(db, "sign-in", person=person, detail="with second factor")
                begin_session(person)
                return redirect(safe_next(pending.get("next")))
            record(db, "sign-in-failed", person=person,
                   detail="locked" if result.outcome == "locked" else "wrong code")
        if result.outcome == "locked":
            session.pop("pending", None)
            flash(_refusal(result), "error")
            return redirect(url_for("console.login"))
        error = "That code is not right. Codes change every 30 seconds; use the newest one."
    elif request.method == "POST":
        error = "Enter the 6-digit code from your authenticator app."
    status = 200 if error is None else 401
    return render_template("console/login_code.html", form=form, error=error,
                           title="Two-step sign-in"), status


@bp.post("/logout")
def logout() -> Any:
    with session_scope(web.engine()) as db:
        record(db, "sign-out")
    end_session()
    flash("You are signed out.", "info")
    return redirect(url_for("console.login"))


@bp.get("/")
def index() -> Any:
    """The console's front door: the inbox for those who answer participants, else the
    participants page (signing in first when needed)."""
    person = me()
    if person is not None and staff.can(person, "conversations.reply"):
        return redirect(url_for("console.inbox"))
    return redirect(url_for("console.participants"))
