"""Who is signed in, what they may do, and the checks every console request passes first:
CSRF on every POST, a signed-in person, the idle timeout, the role a route requires."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError
from sqlmodel import Session

from bot import web
from bot.clock import now
from bot.people import audit, staff
from bot.store.db import session_scope
from bot.store.support import Staff
from bot.web.console import SESSION_HOURS, bp, csrf

login_manager = LoginManager()
login_manager.login_view = "console.login"
login_manager.login_message = "Please sign in to continue."
login_manager.session_protection = "basic"
# Reachable without signing in; everything else in the console needs a session.
PUBLIC = {"console.login", "console.login_code", "console.static"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages hold personal data: never kept by a browser or proxy
}


class ConsoleUser(UserMixin):
    """A staff member as Flask-Login sees them. The session id carries a fingerprint of the
    password and second factor, so changing either signs out every other session."""

    def __init__(self, person: Staff) -> None:
        self.staff = person

    def get_id(self) -> str:
        return f"{self.staff.id}:{fingerprint(self.staff)}"


def fingerprint(person: Staff) -> str:
    secret = f"{person.password_hash}|{person.totp_secret or ''}"
    return hashlib.sha256(secret.encode()).hexdigest()[:20]


@login_manager.user_loader
def load_user(user_id: str) -> ConsoleUser | None:
    staff_id, _, mark = user_id.partition(":")
    if not staff_id.isdigit():
        return None
    with session_scope(web.engine()) as db:
        person = db.get(Staff, int(staff_id))
    if person is None or person.removed_at is not None or fingerprint(person) != mark:
        return None
    return ConsoleUser(person)


def me() -> Staff | None:
    """The signed-in staff member, fresh from the database for this request."""
    return current_user.staff if current_user.is_authenticated else None


def wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def address() -> str:
    """The client's address: the hop our proxy added, when there is one."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-1] if hops else (request.remote_addr or "")


def record(db: Session, action: str, participant_id: int | None = None, detail: str = "",
           *, person: Staff | None = None, actor: str | None = None) -> None:
    """Append to the audit log as the signed-in person (or `person`), from this client."""
    audit.record(db, staff=person or me(), action=action, participant_id=participant_id,
                 detail=detail, address=address(), actor=actor)


def begin_session(person: Staff) -> None:
    """Sign `person` in on a fresh session (nothing from before signing in is kept)."""
    session.clear()
    login_user(ConsoleUser(person))
    moment = now().timestamp()
    session["since"] = session["seen"] = moment


def end_session() -> None:
    logout_user()
    session.clear()


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console page of this site, never another site."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/console"):
            return target
    return url_for("console.index")


@bp.before_request
def guard() -> Response | None:
    csrf.protect()
    if request.endpoint in PUBLIC:
        return None
    if not current_user.is_authenticated:
        if wants_json():
            return Response('{"error": "sign in first"}', 401, mimetype="application/json")
        return login_manager.unauthorized()
    moment = now().timestamp()
    idle = web.settings().console_idle_minutes * 60
    if moment - session.get("seen", 0) > idle or moment - session.get("since", 0) > (
        SESSION_HOURS * 3600
    ):
        with session_scope(web.engine()) as db:
            record(db, "signed-out-idle")
        end_session()
        flash(f"You were signed out after {web.settings().console_idle_minutes} minutes "
              f"without activity. Please sign in again.", "info")
        if wants_json():
            return Response('{"error": "signed out"}', 401, mimetype="application/json")
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    session["seen"] = moment
    return None


@bp.after_request
def secure_headers(response: Response) -> Response:
    if request.endpoint == "console.static":
        return response
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def requires(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Refuse (403) anyone whose role does not grant `permission`."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if not staff.can(me(), permission):
                abort(403)
            return view(*args, **kwargs)

        checked.permission = permission  # type: ignore[attr-defined]
        return checked

    return decorate


@bp.errorhandler(403)
def forbidden(_error: Exception) -> tuple[Any, int]:
    if wants_json():
        return jsonify(error="your role does not allow this"), 403
    return render_template("console/error.html", title="Not allowed",
                           message="Your role does not allow this page or action. "
                                   "Ask an admin if you need it."), 403


@bp.errorhandler(404)
def not_found(_error: Exception) -> tuple[Any, int]:
    return render_template("console/error.html", title="Not found",
                           message="There is nothing at this address."), 404


@bp.errorhandler(CSRFError)
def csrf_refused(error: CSRFError) -> tuple[Any, int]:
    if wants_json():
        return jsonify(error="the page expired; reload it and try again"), 400
    return render_template("console/error.html", title="This form has expired",
                           message="The page was open too long or came from elsewhere. Go back, "
                                   "reload the page and try again."), 400


@bp.context_processor
def console_context() -> dict[str, Any]:
    from bot.web.console import display

    return {"me": me(), "can": lambda permission: staff.can(me(), permission),
            "nav": display.navigation(), **display.HELPERS}
