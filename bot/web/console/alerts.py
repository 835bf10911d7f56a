"""Alerts: what needs a person (crisis first, then whoever has waited longest), each alert with
who has been told and when, acknowledging one (escalation stops, you are named) and resolving
it with a note. Message text and numbers only for the roles that may see them."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlmodel import Session, case, col, func, select, update
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from bot import web
from bot.clock import now
from bot.people import escalation, oncall, participants, staff
from bot.people.timeline import ALERT_TITLES
from bot.store.db import session_scope
from bot.store.models import Alert, AlertMessage, InboundMessage, Participant
from bot.store.support import AuditEvent, Notification, Staff, StaffNote
from bot.web.console import bp
from bot.web.console.auth import me, record, requires, wants_json
from bot.web.console.display import ago

RESOLVED_SHOWN = 100  # the newest resolved alerts the list shows


class ResolveForm(FlaskForm):
    note = TextAreaField(
        "What was done", validators=[DataRequired(), Length(min=3, max=1000)],
        filters=[lambda text: text.strip() if text else text],
        description="Required. Kept in the audit log and, for a participant, as a staff note. "
                    "Do not write a phone number.",
        render_kw={"rows": 3})


def who(acknowledged_by: str | None, names: dict[str, str] | None = None) -> str:
    """Who acknowledged, in words: a staff member's name, or the on-call phone's last digits."""
    if not acknowledged_by:
        return "nobody yet"
    if acknowledged_by.startswith("sms:"):
        return f"the on-call phone ending {acknowledged_by[-4:]} (by text)"
    return (names or {}).get(acknowledged_by, acknowledged_by)


def _names(db: Session) -> dict[str, str]:
    return {person.email: person.name or person.email for person in db.exec(select(Staff))}


def _rounds(db: Session, alert_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per alert: notifications sent and failed."""
    rows = db.exec(
        select(Notification.alert_id, Notification.status, func.count())
        .where(col(Notification.alert_id).in_(alert_ids or [0]))
        .group_by(col(Notification.alert_id), col(Notification.status))
    )
    found: dict[int, dict[str, int]] = {}
    for alert_id, status, count in rows:
        found.setdefault(alert_id, {"sent": 0, "failed": 0, "pending": 0})[status] = count
    return found


def _unenrolled_numbers(db: Session, alerts: list[Alert]) -> dict[int, str]:
    """Alert id -> the number its first text came from, for alerts of unenrolled numbers."""
    wanted = {a.inbound_message_id: a.id for a in alerts
              if a.participant_id is None and a.inbound_message_id}
    if not wanted:
        return {}
    rows = db.exec(select(InboundMessage.id, InboundMessage.from_phone)
                   .where(col(InboundMessage.id).in_(list(wanted))))
    return {wanted[message_id]: phone for message_id, phone in rows}


@bp.get("/alerts")
@requires("participants.view")
def alerts() -> Any:
    show = "resolved" if request.args.get("show") == "resolved" else "open"
    query = select(Alert, Participant).join(
        Participant, col(Participant.id) == col(Alert.participant_id), isouter=True)
    if show == "open":
        crisis_first = case((col(Alert.kind) == "crisis", 0), else_=1)
        query = query.where(col(Alert.resolved_at).is_(None)).order_by(
            crisis_first, col(Alert.created_at), col(Alert.id))
    else:
        query = query.where(col(Alert.resolved_at).is_not(None)).order_by(
            col(Alert.resolved_at).desc(), col(Alert.id).desc()).limit(RESOLVED_SHOWN)
    with session_scope(web.engine()) as db:
        rows = list(db.exec(query))
        found = [alert for alert, _ in rows]
        rounds = _rounds(db, [a.id or 0 for a in found])
        numbers = _unenrolled_numbers(db, found) if staff.can(me(), "participants.identify") \
            else {}
        names = _names(db)
        open_counts = dict(db.exec(
            select(Alert.kind, func.count()).where(col(Alert.resolved_at).is_(None))
            .group_by(col(Alert.kind))
        ).all())
    open_crisis = open_counts.pop("crisis", 0)
    return render_template(
        "console/alerts.html", title="Alerts", show=show, rows=rows, rounds=rounds,
        numbers=numbers, names=names, who=who, kinds=ALERT_TITLES,
        open_crisis=open_crisis, open_other=sum(open_counts.values()),
        limit=RESOLVED_SHOWN, channels=oncall.channels(web.settings()),
    )


def _texts(db: Session, alert: Alert) -> list[InboundMessage]:
    """The text that raised the alert and those kept with it since, oldest first."""
    kept = select(AlertMessage.inbound_message_id).where(AlertMessage.alert_id == alert.id)
    return list(db.exec(
        select(InboundMessage).where(
            (col(InboundMessage.id) == (alert.inbound_message_id or 0))
            | col(InboundMessage.id).in_(kept))
        .order_by(col(InboundMessage.received_at), col(InboundMessage.id))
    ))


def _resolution(db: Session, alert_id: int) -> AuditEvent | None:
    """The audit event that resolved the alert in the console (its detail holds the note)."""
    return db.exec(
        select(AuditEvent).where(AuditEvent.action == "resolve-alert",
                                 col(AuditEvent.detail).startswith(f"alert {alert_id}:"))
        .order_by(col(AuditEvent.id))
    ).first()


def get_alert(db: Session, alert_id: int) -> Alert:
    found = db.get(Alert, alert_id)
    if found is None:
        abort(404)
    return found


def render(alert_id: int, *, form: ResolveForm | None = None, status: int = 200) -> Any:
    """The alert's page; each rendering is written to the audit log."""
    bodies = staff.can(me(), "messages.read")
    identify = staff.can(me(), "participants.identify")
    with session_scope(web.engine()) as db:
        alert = get_alert(db, alert_id)
        person = db.get(Participant, alert.participant_id) if alert.participant_id else None
        sent = list(db.exec(select(Notification).where(Notification.alert_id == alert_id)
                            .order_by(col(Notification.round), col(Notification.id))))
        texts = _texts(db, alert) if bodies else []
        number = _unenrolled_numbers(db, [alert]).get(alert_id) if identify else None
        resolution = _resolution(db, alert_id)
        state = None
        if person is not None:
            reason = participants.pause_reasons(db, [person.id or 0]).get(person.id or 0, "")
            state = participants.status_of(person, reason if bodies else "")
        names = _names(db)
        record(db, "view-alert", alert.participant_id,
               f"alert {alert_id}" + ("" if bodies else "; de-identified"))
    note = resolution.detail.partition(":")[2].strip() if resolution else ""
    return render_template(
        "console/alert.html", title=f"Alert {alert_id}", alert=alert, person=person,
        status=state, notifications=sent, texts=texts, number=number, bodies=bodies,
        identify=identify, resolution=resolution, resolution_note=note,
        acknowledged_by=who(alert.acknowledged_by, names), kinds=ALERT_TITLES,
        masked=oncall.masked, channels=oncall.channels(web.settings()),
        escalate_minutes=web.settings().escalate_after_minutes,
        escalation_due=alert.next_escalation_at is not None and alert.next_escalation_at <= now(),
        form=form or ResolveForm(formdata=None),
    ), status


@bp.get("/alerts/<int:alert_id>")
@requires("participants.view")
def alert(alert_id: int) -> Any:
    return render(alert_id)


def _back(alert_id: int, message: str, category: str = "success") -> Any:
    flash(message, category)
    return redirect(url_for("console.alert", alert_id=alert_id))


@bp.post("/alerts/<int:alert_id>/acknowledge")
@requires("conversations.reply")
def alert_acknowledge(alert_id: int) -> Any:
    person = me()
    assert person is not None
    with session_scope(web.engine()) as db:
        found = get_alert(db, alert_id)
        if found.resolved_at is not None:
            message, category = f"Alert {alert_id} is resolved already.", "info"
        elif found.acknowledged_at is not None:
            message, category = (f"Alert {alert_id} was acknowledged already by "
                                 f"{who(found.acknowledged_by, _names(db))}, "
                                 f"{ago(found.acknowledged_at)}.", "info")
        else:
            found = escalation.acknowledge(db, alert_id, person.email, now()) or found
            record(db, "acknowledge-alert", found.participant_id, f"alert {alert_id}")
            message, category = (f"Alert {alert_id} is yours: escalation has stopped and "
                                 f"the team can see you have it.", "success")
    if wants_json():
        return jsonify(message=message, acknowledged_by=found.acknowledged_by,
                       acknowledged_at=found.acknowledged_at.isoformat()
                       if found.acknowledged_at else None)
    return _back(alert_id, message, category)


@bp.post("/alerts/<int:alert_id>/resolve")
@requires("alerts.manage")
def alert_resolve(alert_id: int) -> Any:
    form = ResolveForm()
    if not form.validate_on_submit():
        return render(alert_id, form=form, status=400)
    note = (form.note.data or "").strip()
    person = me()
    assert person is not None and person.id is not None
    with session_scope(web.engine()) as db:
        found = get_alert(db, alert_id)
        done = db.exec(  # type: ignore[call-overload]
            update(Alert).where(col(Alert.id) == alert_id, col(Alert.resolved_at).is_(None))
            .values(resolved_at=now(), next_escalation_at=None)
        ).rowcount
        if not done:
            return _back(alert_id, f"Alert {alert_id} was resolved already.", "info")
        record(db, "resolve-alert", found.participant_id, f"alert {alert_id}: {note}")
        participant = db.get(Participant, found.participant_id) if found.participant_id else None
        if participant is not None:
            title = ALERT_TITLES.get(found.kind, found.kind).lower()
            db.add(StaffNote(participant_id=participant.id or 0, staff_id=person.id,
                             body=f"Resolved alert {alert_id} ({title}): {note}"))
        paused = participant is not None and participant.paused_at is not None
    extra = (" Their automated messages stay paused until someone resumes them on their page."
             if paused else "")
    return _back(alert_id, f"Alert {alert_id} is resolved.{extra}")
