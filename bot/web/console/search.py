"""Finding a participant: by id, by number (roles that may see numbers), program and status."""

from __future__ import annotations

import re
from typing import Any

from flask import abort, redirect, render_template, request, url_for

from bot import web
from bot.participants.phones import PhoneNumberError, normalize
from bot.people import participants, staff
from bot.store.db import session_scope
from bot.web.console import bp
from bot.web.console.auth import me, record, requires
from bot.web.console.forms import SearchForm

PAGE = 50


def _number_filter(form: SearchForm) -> dict[str, str] | None:
    """{"phone": E.164} or {"phone_digits": last digits}, or None when the field is empty or
    wrong (its error is on the form)."""
    raw = (form.number.data or "").strip()
    if not raw:
        return None
    digits = re.sub(r"\D", "", raw)
    if len(digits) < 4:
        form.number.errors = [*form.number.errors, "Give at least the last four digits."]
        return None
    if raw.startswith("+") or len(digits) >= 10:
        try:
            return {"phone": normalize(raw)}
        except PhoneNumberError as exc:
            form.number.errors = [*form.number.errors, str(exc)]
            return None
    return {"phone_digits": digits}


def _program_choices(db: Any) -> dict[str, str]:
    try:
        names = set(web.programs())
    except Exception:  # content with problems still lets staff find people
        names = set()
    names |= set(participants.programs_in_use(db))
    return {"": "Any program", **{name: name for name in sorted(names)}}


@bp.get("/participants", endpoint="participants")
@requires("participants.view")
def participants_list() -> Any:
    form = SearchForm(request.args)
    raw_page = request.args.get("page", "1")
    page = max(int(raw_page), 1) if raw_page.isdigit() else 1
    with session_scope(web.engine()) as db:
        form.program.choices = _program_choices(db)
        valid = form.validate() if request.args else True
        number = None
        if form.number.data:
            if not staff.can(me(), "participants.identify"):
                abort(403)
            number = _number_filter(form)
            valid = valid and number is not None
        rows, total, reasons, last = [], 0, {}, {}
        if valid:
            rows, total = participants.search(
                db, participant_id=form.id.data, program=form.program.data or None,
                status=form.status.data or None, limit=PAGE, offset=(page - 1) * PAGE,
                **(number or {}),
            )
            if number is not None:
                kind = "whole number" if "phone" in number else "last digits"
                record(db, "search-number", detail=f"by {kind}: {total} found")
            ids = [p.id for p in rows if p.id is not None]
            reasons = participants.pause_reasons(db, ids)
            last = participants.last_texts(db, ids)
        counts = participants.counts_by_status(db)
    exact = form.id.data or (number and "phone" in number)
    if valid and exact and total == 1 and page == 1:
        return redirect(url_for("console.participant", participant_id=rows[0].id))
    results = [
        {"p": p, "status": participants.status_of(p, reasons.get(p.id or 0, "")),
         "last": last.get(p.id or 0)}
        for p in rows
    ]
    return render_template(
        "console/participants.html", title="Participants", form=form, results=results,
        total=total, page=page, pages=max((total + PAGE - 1) // PAGE, 1), counts=counts,
        searched=bool(request.args), args={k: v for k, v in request.args.items() if k != "page"},
        identify=staff.can(me(), "participants.identify"),
    ), 200 if valid else 400

