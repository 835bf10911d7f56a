"""The audit log, for admins: who saw or did what, about whom, when; filtered and paged."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from bot import web
from bot.people import audit, staff
from bot.store.db import session_scope
from bot.web.console import bp
from bot.web.console.auth import requires

PAGE = 100


def _number(name: str) -> int | None:
    raw = request.args.get(name, "").strip().lstrip("#")
    return int(raw) if raw.isdigit() else None


@bp.get("/audit")
@requires("audit.view")
def audit_log() -> Any:
    staff_id, participant_id = _number("staff"), _number("participant")
    action = request.args.get("action", "").strip() or None
    before = _number("before")
    with session_scope(web.engine()) as db:
        people = staff.list_staff(session=db)
        events = audit.events(db, staff_id=staff_id, participant_id=participant_id,
                              action=action, before_id=before, limit=PAGE + 1)
        actions = audit.actions_seen(db)
    more = len(events) > PAGE
    events = events[:PAGE]
    filters = {"staff": staff_id or "", "participant": participant_id or "",
               "action": action or ""}
    return render_template(
        "console/audit.html", title="Audit log", events=events, people=people,
        actions=actions, filters=filters,
        older={**filters, "before": events[-1].id} if more and events else None,
    )
