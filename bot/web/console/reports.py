"""Reports for coordinators: how quickly participants who needed a person got one."""

from __future__ import annotations

from typing import Any

from flask import render_template
from sqlmodel import col, select

from bot import web
from bot.clock import now
from bot.people import response_times
from bot.store.db import session_scope
from bot.store.support import Conversation, Staff
from bot.web.console import bp
from bot.web.console.auth import requires
from bot.web.console.display import console_zone


@bp.get("/reports/response-times", endpoint="response_times")
@requires("reports.view")
def response_times_report() -> Any:
    zone, moment = console_zone(), now()
    since = response_times.window_start(moment, zone)
    with session_scope(web.engine()) as db:
        rows = list(db.exec(select(Conversation).where(col(Conversation.opened_at) >= since)))
        names = {p.id: p.name or p.email for p in db.exec(select(Staff)) if p.id is not None}
    report = response_times.report(rows, zone=zone, names=names, moment=moment)
    return render_template("console/response_times.html", title="Reply times", report=report,
                           words=response_times.duration_words)
