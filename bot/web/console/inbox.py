"""The inbox: open conversations, crisis first, then who has waited longest. The list refreshes
itself every few seconds (plain fetch of the same page's list); it works without script too."""

from __future__ import annotations

from typing import Any

from flask import abort, render_template, request

from bot import web
from bot.clock import now
from bot.people import conversations, inbox, staff
from bot.store.db import session_scope
from bot.web.console import bp
from bot.web.console.auth import me, requires

REFRESH_SECONDS = 5


def _folder() -> str:
    folder = request.args.get("folder", "")
    if folder and folder not in inbox.FOLDERS:
        abort(404)
    return folder


@bp.get("/inbox", endpoint="inbox")
@requires("conversations.reply")
def inbox_page() -> Any:
    person = me()
    assert person is not None
    moment = now()
    bodies = staff.can(person, "messages.read")
    with session_scope(web.engine()) as db:
        tally = inbox.counts(db, person.id)
        # Mine when there is something in it, else everything that is open.
        folder = _folder() or ("mine" if tally["mine"] else "all")
        items = inbox.inbox(db, folder=folder, staff_id=person.id, moment=moment, bodies=bodies)
    template = "console/_inbox_list.html" if request.args.get("part") == "list" \
        else "console/inbox.html"
    return render_template(
        template, title="Inbox", items=items, folder=folder, folders=inbox.FOLDERS,
        tally=tally, reasons=conversations.REASONS, severities=conversations.SEVERITY_LABELS,
        moment=moment, refresh=REFRESH_SECONDS,
    )
