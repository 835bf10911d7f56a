"""Your own account: what your role allows, and a second factor (TOTP) turned on or off."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, session, url_for

from bot import web
from bot.people import staff
from bot.store.db import session_scope
from bot.store.support import Staff
from bot.web.console import bp
from bot.web.console.auth import begin_session, me, record
from bot.web.console.forms import DisableTotpForm, EnableTotpForm


def _setup_secret() -> str:
    """The secret being set up, kept across reloads until a code confirms it."""
    secret = session.get("totp_setup")
    if not secret:
        secret = session["totp_setup"] = staff.new_totp_secret()
    return secret


def _grouped(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _page(**extra: Any) -> Any:
    person = me()
    assert person is not None
    secret = None if person.totp_secret else _setup_secret()
    return render_template(
        "console/account.html", title="Your account",
        permissions=sorted(staff.PERMISSIONS.get(person.role, ())),
        summary=staff.ROLE_SUMMARIES.get(person.role, ""),
        secret=_grouped(secret) if secret else None,
        uri=staff.totp_uri(email=person.email, secret=secret) if secret else None,
        enable_form=extra.pop("enable_form", None) or EnableTotpForm(),
        disable_form=extra.pop("disable_form", None) or DisableTotpForm(),
        **extra,
    )


@bp.get("/account")
def account() -> Any:
    return _page()


@bp.post("/account/totp/enable")
def account_totp_enable() -> Any:
    form = EnableTotpForm()
    person = me()
    assert person is not None
    if form.validate_on_submit():
        with session_scope(web.engine()) as db:
            fresh = db.get(Staff, person.id)
            assert fresh is not None
            if staff.enable_totp(session=db, staff=fresh, secret=_setup_secret(),
                                 code=form.code.data or ""):
                record(db, "enable-totp", person=fresh)
                db.flush()
                session.pop("totp_setup", None)
                begin_session(fresh)  # the session id changes with the second factor
                flash("Two-step sign-in is on. You will be asked for a code each time you "
                      "sign in.", "success")
                return redirect(url_for("console.account"))
    return _page(enable_form=form, enable_error="That code does not match. Check that the "
                                                "app shows Tend and use the newest code."), 400


@bp.post("/account/totp/disable")
def account_totp_disable() -> Any:
    form = DisableTotpForm()
    person = me()
    assert person is not None
    if form.validate_on_submit() and staff.password_matches(person, form.password.data or ""):
        with session_scope(web.engine()) as db:
            fresh = db.get(Staff, person.id)
            assert fresh is not None
            staff.disable_totp(session=db, staff=fresh)
            record(db, "disable-totp", person=fresh)
        begin_session(fresh)
        flash("Two-step sign-in is off: your password alone signs you in.", "info")
        return redirect(url_for("console.account"))
    return _page(disable_form=form, disable_error="That password is not right."), 400
