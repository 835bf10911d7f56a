"""One participant's page: their state, their program and attributes, the number (masked until
revealed, and each reveal audited) and their whole history in their own local time."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from flask import abort, jsonify, render_template, request
from sqlmodel import Session, col, select

from bot import web
from bot.care.programs import Program
from bot.clock import as_utc, now
from bot.people import participants, staff
from bot.people.timeline import by_local_day, timeline
from bot.store.db import session_scope
from bot.store.models import Alert, Participant
from bot.web.console import bp
from bot.web.console.auth import me, record, requires, wants_json
from bot.web.console.display import when
from bot.web.console.forms import ConfirmForm, NoteForm, ProfileForm, ReasonForm, StopForm


def program_of(participant: Participant) -> Program | None:
    try:
        return web.programs().get(participant.program)
    except Exception:  # a program with problems: the page still shows the history
        return None


def pretty(phone: str) -> str:
    try:
        parsed = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return phone
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _before() -> datetime | None:
    raw = request.args.get("before", "").strip()
    if not raw:
        return None
    try:
        return as_utc(datetime.fromisoformat(raw))
    except ValueError:
        abort(400)


def _attributes(participant: Participant, program: Program | None) -> list[dict[str, Any]]:
    defaults = program.attribute_defaults if program else {}
    own = dict(participant.attributes or {})
    return [
        {"name": name, "value": own.get(name, defaults.get(name, "")),
         "default": defaults.get(name), "own": name in own}
        for name in sorted(set(defaults) | set(own))
    ]


def get_participant(db: Session, participant_id: int) -> Participant:
    participant = db.get(Participant, participant_id)
    if participant is None:
        abort(404)
    return participant


def render(participant_id: int, *, status: int = 200, revealed: str | None = None,
           forms: dict[str, Any] | None = None) -> Any:
    """The page, with any form given in `forms` (and its errors) in place of a blank one.
    Each rendering shows the history, so each is written to the audit log."""
    before = _before()
    bodies = staff.can(me(), "messages.read")
    with session_scope(web.engine()) as db:
        participant = get_participant(db, participant_id)
        story = timeline(db, participant=participant, bodies=bodies, before=before)
        reason = participants.pause_reasons(db, [participant_id]).get(participant_id, "")
        last = participants.last_texts(db, [participant_id]).get(participant_id)
        open_alerts = list(db.exec(
            select(Alert).where(Alert.participant_id == participant_id,
                                col(Alert.resolved_at).is_(None))
            .order_by(col(Alert.created_at).desc())
        ))
        detail = "" if bodies else "de-identified"
        if before is not None:
            detail = f"{detail}; page before {before:%Y-%m-%d %H:%M} UTC".lstrip("; ")
        record(db, "view-history", participant_id, detail)
    program = program_of(participant)
    tz = ZoneInfo(participant.timezone)
    profile = ProfileForm(formdata=None, timezone=participant.timezone)
    blank = {"pause": ReasonForm(formdata=None, prefix="pause"),
             "resume": ReasonForm(formdata=None, prefix="resume"),
             "stop": StopForm(formdata=None, prefix="stop"), "note": NoteForm(formdata=None),
             "profile": profile, "reveal": ConfirmForm(formdata=None)}
    return render_template(
        "console/participant.html", title=f"Participant {participant.id}",
        p=participant, program=program, tz=tz, bodies=bodies,
        status=participants.status_of(participant, reason if bodies else ""),
        last_text=last, open_alerts=open_alerts, attributes=_attributes(participant, program),
        upcoming=story.upcoming, days=by_local_day(story.past, tz), earlier=story.earlier,
        before=before, revealed=pretty(revealed) if revealed else None,
        form_set={**blank, **(forms or {})}, identify=staff.can(me(), "participants.identify"),
        language=(participant.attributes or {}).get("language"),
        zones=sorted(_common_zones()), local_now=when(now(), tz, "time"),
    ), status


def _common_zones() -> set[str]:
    import zoneinfo

    return {z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith("Etc/")}


@bp.get("/participants/<int:participant_id>")
@requires("participants.view")
def participant(participant_id: int) -> Any:
    return render(participant_id)


@bp.post("/participants/<int:participant_id>/reveal")
@requires("participants.identify")
def participant_reveal(participant_id: int) -> Any:
    with session_scope(web.engine()) as db:
        found = get_participant(db, participant_id)
        record(db, "view-number", participant_id)
    if wants_json():
        return jsonify(phone=pretty(found.phone), e164=found.phone)
    return render(participant_id, revealed=found.phone)
