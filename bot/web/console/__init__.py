"""The console at /console: where staff sign in, look participants up and act for them.

Server-rendered pages with a little plain JavaScript, everything served from this package.
Every route checks the signed-in person's role; every view of personal data and every action
goes to the audit log. Sessions end after CONSOLE_IDLE_MINUTES without a request.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask
from flask_wtf.csrf import CSRFProtect

bp = Blueprint(
    "console", __name__, url_prefix="/console",
    template_folder="templates", static_folder="static", static_url_path="/static",
)
csrf = CSRFProtect()
SESSION_HOURS = 12  # signed out after this long however active: a shift, not a week


def init_app(app: Flask) -> None:
    """Register the console on `app`: sessions, CSRF on every console form, the pages."""
    settings = app.config["TEND"]
    app.config.update(
        SESSION_COOKIE_NAME="tend_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Production is served over https; local runs and tests speak plain http.
        SESSION_COOKIE_SECURE=settings.production,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        # Checked by the console's own hook, so Twilio's webhooks are never asked for a token.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as its session (idle timeout, 12 h)
    )
    csrf.init_app(app)
    auth.login_manager.init_app(app)
    app.register_blueprint(bp)


# The pages register their routes on `bp`.
from bot.web.console import (  # noqa: E402, F401
    account,
    actions,
    admin,
    alerts,
    audit_log,
    auth,
    conversation,
    enroll,
    imports,
    inbox,
    login,
    participant,
    reports,
    saved_replies,
    search,
)
