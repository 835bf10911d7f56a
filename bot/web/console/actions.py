"""What coordinators do on a participant's page (pause, resume, stop, time zone, attributes)
and what coaches add to it (a staff note). Each change is audited; none is sent as a text."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import flash, redirect, request, url_for
from sqlmodel import Session, col, select, update

from bot import web
from bot.care.planning import time_of_day
from bot.care.programs import Program
from bot.care.timing import TimezoneError, local_moment, zone
from bot.clock import now
from bot.participants import consent
from bot.participants.enrollment import EnrollmentError, check_attributes
from bot.store.db import session_scope
from bot.store.models import Alert, Delivery, DeliveryStatus, Participant
from bot.store.support import StaffNote
from bot.web.console import bp
from bot.web.console.auth import me, record, requires
from bot.web.console.forms import NoteForm, ProfileForm, ReasonForm, StopForm
from bot.web.console.participant import get_participant, program_of, render


def _back(participant_id: int, message: str, category: str = "success") -> Any:
    flash(message, category)
    return redirect(url_for("console.participant", participant_id=participant_id) + "#actions")


@bp.post("/participants/<int:participant_id>/pause")
@requires("participants.manage")
def participant_pause(participant_id: int) -> Any:
    form = ReasonForm(prefix="pause")
    if not form.validate_on_submit():
        return render(participant_id, status=400, forms={"pause": form})
    reason = (form.reason.data or "").strip()
    with session_scope(web.engine()) as db:
        participant = get_participant(db, participant_id)
        if participant.paused_at is not None:
            return _back(participant_id, "Automated messages were already paused.", "info")
        consent.pause(session=db, participant=participant, reason=reason)
        record(db, "pause", participant_id, reason)
    return _back(participant_id, "Automated messages are paused. Nothing automated is sent "
                                 "until someone resumes them.")


@bp.post("/participants/<int:participant_id>/resume")
@requires("participants.manage")
def participant_resume(participant_id: int) -> Any:
    form = ReasonForm(prefix="resume")
    if not form.validate_on_submit():
        return render(participant_id, status=400, forms={"resume": form})
    reason = (form.reason.data or "").strip()
    settle = request.form.get("resolve_crisis") == "yes"
    with session_scope(web.engine()) as db:
        participant = get_participant(db, participant_id)
        if participant.paused_at is None:
            return _back(participant_id, "Automated messages were not paused.", "info")
        consent.resume(session=db, participant=participant, program=program_of(participant),
                       via=reason)
        resolved = 0
        if settle:
            # Someone has been in touch: the crisis alerts are settled with the pause, as
            # `bot resume` settles them.
            resolved = db.exec(  # type: ignore[call-overload]
                update(Alert).where(col(Alert.participant_id) == participant_id,
                                    col(Alert.kind) == "crisis", col(Alert.resolved_at).is_(None))
                .values(resolved_at=now())
            ).rowcount
        detail = reason + (f"; {resolved} crisis alert(s) resolved" if resolved else "")
        record(db, "resume", participant_id, detail)
    extra = f" {resolved} open crisis alert(s) resolved." if resolved else ""
    return _back(participant_id, f"Automated messages are resumed.{extra}")


@bp.post("/participants/<int:participant_id>/stop")
@requires("participants.manage")
def participant_stop(participant_id: int) -> Any:
    form = StopForm(prefix="stop")
    if not form.validate_on_submit():
        return render(participant_id, status=400, forms={"stop": form})
    reason = (form.reason.data or "").strip()
    with session_scope(web.engine()) as db:
        participant = get_participant(db, participant_id)
        if not consent.opt_out(session=db, participant=participant, reason=f"staff: {reason}"):
            return _back(participant_id, "This participant had already opted out.", "info")
        record(db, "opt-out", participant_id, reason)
    return _back(participant_id, "All messages are stopped. Only a START text from the "
                                 "participant can restart them.")


def move_to_zone(db: Session, participant: Participant, old: ZoneInfo, new: ZoneInfo) -> int:
    """Keep each planned message at its local wall time in the new zone; returns how many."""
    planned = db.exec(select(Delivery).where(
        Delivery.participant_id == participant.id, Delivery.status == DeliveryStatus.SCHEDULED,
        Delivery.via == "api", col(Delivery.due_at) > now(),
    )).all()
    for delivery in planned:
        local = delivery.due_at.astimezone(old)
        delivery.due_at = local_moment(local.date(), local.time(), new)
        db.add(delivery)
    return len(planned)


def retime_for_attributes(db: Session, participant: Participant, program: Program,
                          changed: set[str]) -> int:
    """Planned messages timed by a changed attribute ("dose_time + 2:00") move to the new time
    on the same local day, their reminders with them; one whose new time has already passed
    keeps its old one. Returns how many moved."""
    tz = zone(participant.timezone)
    planned = db.exec(select(Delivery).where(
        Delivery.participant_id == participant.id, Delivery.status == DeliveryStatus.SCHEDULED,
        Delivery.via == "api", col(Delivery.due_at) > now(),
        col(Delivery.event_key).is_not(None),
    )).all()
    shifts: dict[int, timedelta] = {}
    for delivery in planned:
        _, event = program.find_event(delivery.event_key or "")
        if delivery.kind != "event" or event is None or event.attribute not in changed:
            continue
        clock, minutes = time_of_day(event, participant, program, delivery.event_key or "")
        day = (delivery.due_at - timedelta(minutes=event.offset_minutes)).astimezone(tz).date()
        due = local_moment(day, clock, tz) + timedelta(minutes=minutes)
        if due > now() and delivery.id is not None:
            shifts[delivery.id] = due - delivery.due_at
            delivery.due_at = due
            db.add(delivery)
    for delivery in planned:
        prompt = (delivery.context or {}).get("reminds")
        if delivery.kind == "reminder" and prompt in shifts:
            delivery.due_at += shifts[prompt]
            db.add(delivery)
    return len(shifts)


def _attributes_from(form_data: Any, program: Program | None) -> dict[str, str]:
    names = program.attribute_defaults if program else {}
    return {name: form_data.get(f"attr-{name}", "").strip() for name in names
            if f"attr-{name}" in form_data}


@bp.post("/participants/<int:participant_id>/profile")
@requires("participants.manage")
def participant_profile(participant_id: int) -> Any:
    form = ProfileForm()
    valid = form.validate_on_submit()
    with session_scope(web.engine()) as db:
        participant = get_participant(db, participant_id)
        program = program_of(participant)
        try:
            new_zone = zone((form.timezone.data or "").strip())
        except TimezoneError as exc:
            form.timezone.errors = [*form.timezone.errors, str(exc)]
            valid = False
        posted = _attributes_from(request.form, program)
        try:
            checked = check_attributes(program, {k: v for k, v in posted.items() if v}) if (
                program) else {}
        except EnrollmentError as exc:
            flash(str(exc), "error")
            valid = False
        if not valid:
            db.rollback()
            return render(participant_id, status=400, forms={"profile": form})
        messages = _apply_profile(db, participant, program, new_zone,
                                  {name: checked.get(name) for name in posted})
    return _back(participant_id, " ".join(messages) or "Nothing changed.",
                 "success" if messages else "info")


def _apply_profile(db: Session, participant: Participant, program: Program | None,
                   new_zone: ZoneInfo, posted: dict[str, str | None]) -> list[str]:
    """Save the zone and the attributes posted (None: back to the program's default)."""
    messages = []
    old_zone = ZoneInfo(participant.timezone)
    if new_zone.key != participant.timezone:
        participant.timezone = new_zone.key
        moved = move_to_zone(db, participant, old_zone, new_zone)
        record(db, "edit-timezone", participant.id, f"{old_zone.key} → {new_zone.key}")
        messages.append(f"Time zone is now {new_zone.key}; {moved} planned message(s) keep "
                        f"their local time.")
    before = dict(participant.attributes or {})
    after = {k: v for k, v in {**before, **posted}.items() if v is not None}
    changed = sorted(k for k in posted if before.get(k) != after.get(k))
    if changed and program is not None:
        participant.attributes = after
        db.add(participant)
        db.flush()
        moved = retime_for_attributes(db, participant, program, set(changed))
        record(db, "edit-attributes", participant.id, "changed: " + ", ".join(changed))
        messages.append(f"Attributes saved ({', '.join(changed)}); {moved} planned message(s) "
                        f"moved to the new time.")
    db.add(participant)
    return messages


@bp.post("/participants/<int:participant_id>/notes")
@requires("notes.add")
def participant_note(participant_id: int) -> Any:
    form = NoteForm()
    if not form.validate_on_submit():
        return render(participant_id, status=400, forms={"note": form})
    person = me()
    assert person is not None and person.id is not None
    with session_scope(web.engine()) as db:
        get_participant(db, participant_id)
        note = StaffNote(participant_id=participant_id, staff_id=person.id,
                         body=(form.body.data or "").strip())
        db.add(note)
        db.flush()
        record(db, "add-note", participant_id, f"note {note.id}")
    return _back(participant_id, "Note added.")
