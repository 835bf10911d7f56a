"""One conversation: its messages both ways (refreshing themselves), the reply box with saved
replies, staff notes, assignment and resolution. Each view and action is audited."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from sqlmodel import Session, col, select

from bot import web
from bot.clock import now
from bot.delivery.cap import quiet_until
from bot.delivery.encoding import MAX_CHARACTERS
from bot.people import conversations, inbox, staff
from bot.people.conversations import ConversationError, QuietHours
from bot.people.participants import status_of
from bot.store.db import session_scope
from bot.store.models import Alert, Participant
from bot.store.support import Conversation, SavedReply, Staff
from bot.web.console import bp
from bot.web.console.auth import me, record, requires, wants_json
from bot.web.console.display import when
from bot.web.console.forms import AssignForm, NoteForm, ReplyForm, ResolveForm
from bot.web.console.participant import get_participant, program_of

REFRESH_SECONDS = 3


def _get(db: Session, conversation_id: int) -> Conversation:
    found = db.get(Conversation, conversation_id)
    if found is None:
        abort(404)
    return found


def _helpers(db: Session) -> list[Staff]:
    return list(db.exec(
        select(Staff).where(col(Staff.removed_at).is_(None), col(Staff.role) != "analyst")
        .order_by(col(Staff.name), col(Staff.email))
    ))


def _context(db: Session, conversation: Conversation, forms: dict[str, Any]) -> dict[str, Any]:
    person = me()
    bodies = staff.can(person, "messages.read")
    participant = (db.get(Participant, conversation.participant_id)
                   if conversation.participant_id is not None else None)
    tz = ZoneInfo(participant.timezone if participant else web.settings().default_timezone)
    program = program_of(participant) if participant else None
    helpers = _helpers(db)
    assign = forms.get("assign") or AssignForm(formdata=None,
                                                staff_id=str(conversation.assigned_to or ""))
    assign.staff_id.choices = {"": "Nobody", **{str(s.id): s.name or s.email for s in helpers}}
    blank = {"reply": ReplyForm(formdata=None), "note": NoteForm(formdata=None),
             "resolve": ResolveForm(formdata=None), "assign": assign}
    saved = list(db.exec(select(SavedReply).where(col(SavedReply.removed_at).is_(None))
                         .order_by(col(SavedReply.title))))
    moment = now()
    return {
        "c": conversation, "p": participant,
        "alert": db.get(Alert, conversation.alert_id) if conversation.alert_id else None,
        "tz": tz, "program": program, "bodies": bodies,
        "status": status_of(participant) if participant else None,
        "messages": inbox.thread(db, conversation, bodies),
        "notes": inbox.notes(db, conversation) if bodies else [],
        "names": {s.id: s.name or s.email for s in helpers},
        "refusal": conversations.can_text(participant),
        "quiet": quiet_until(web.settings(), program, participant.timezone,
                                           moment) if participant else None,
        "reasons": conversations.REASONS, "severities": conversations.SEVERITY_LABELS,
        "saved": saved, "form_set": {**blank, **forms}, "moment": moment,
        "refresh": REFRESH_SECONDS, "max_characters": MAX_CHARACTERS,
    }


def render(conversation_id: int, *, status: int = 200, forms: dict[str, Any] | None = None,
           part: str | None = None) -> Any:
    """The page, or one of the parts it refreshes ("thread", "standing")."""
    with session_scope(web.engine()) as db:
        conversation = _get(db, conversation_id)
        context = _context(db, conversation, forms or {})
        if not part:  # the refreshes of an open page are the same view
            record(db, "view-conversation", conversation.participant_id,
                   f"conversation {conversation_id}" + ("" if context["bodies"]
                                                        else "; de-identified"))
    template = f"console/_{part}.html" if part else "console/conversation.html"
    title = f"Conversation {conversation_id}"
    return render_template(template, title=title, **context), status


@bp.get("/conversations/<int:conversation_id>", endpoint="conversation")
@requires("conversations.reply")
def conversation_page(conversation_id: int) -> Any:
    part = request.args.get("part")
    if part not in (None, "thread", "standing"):
        abort(404)
    return render(conversation_id, part=part)


def _back(conversation_id: int, message: str, category: str = "success",
          anchor: str = "") -> Any:
    if wants_json():
        return jsonify(ok=category != "error", message=message)
    flash(message, category)
    return redirect(url_for("console.conversation", conversation_id=conversation_id) + anchor)


@bp.post("/conversations/<int:conversation_id>/reply")
@requires("conversations.reply")
def conversation_reply(conversation_id: int) -> Any:
    form = ReplyForm()
    if not form.validate_on_submit():
        return render(conversation_id, status=400, forms={"reply": form})
    person = me()
    assert person is not None
    with session_scope(web.engine()) as db:
        conversation = _get(db, conversation_id)
        participant = (db.get(Participant, conversation.participant_id)
                       if conversation.participant_id else None)
        try:
            delivery = conversations.send_reply(
                db, web.settings(), conversation=conversation, staff=person,
                body=form.body.data or "", moment=now(),
                program=program_of(participant) if participant else None,
                quiet_confirmed=bool(form.quiet_confirmed.data),
            )
        except QuietHours as quiet:
            zone = ZoneInfo(participant.timezone) if participant else None
            form.quiet_confirmed.errors = [
                f"It is {when(now(), zone, 'time')} where they are: inside their quiet hours "
                f"until {when(quiet.until, zone, 'time')}. Tick to send it now anyway."]
            return render(conversation_id, status=409, forms={"reply": form})
        except ConversationError as refused:
            form.body.errors = [str(refused)]
            return render(conversation_id, status=400, forms={"reply": form})
        record(db, "send-text", conversation.participant_id,
               f"conversation {conversation_id}; {delivery.segments} segment(s)"
               + ("; inside quiet hours, confirmed" if form.quiet_confirmed.data else ""))
    return _back(conversation_id, "Text queued. Its delivery status shows below.",
                 anchor="#reply")


@bp.post("/conversations/<int:conversation_id>/note")
@requires("notes.add")
def conversation_note(conversation_id: int) -> Any:
    form = NoteForm()
    if not form.validate_on_submit():
        return render(conversation_id, status=400, forms={"note": form})
    person = me()
    assert person is not None
    with session_scope(web.engine()) as db:
        conversation = _get(db, conversation_id)
        try:
            conversations.add_note(db, conversation, person, form.body.data or "", now())
        except ConversationError as refused:
            form.body.errors = [str(refused)]
            return render(conversation_id, status=400, forms={"note": form})
        record(db, "add-note", conversation.participant_id, f"conversation {conversation_id}")
    return _back(conversation_id, "Note added.", anchor="#notes")


@bp.post("/conversations/<int:conversation_id>/assign")
@requires("conversations.reply")
def conversation_assign(conversation_id: int) -> Any:
    form = AssignForm()
    raw = (form.staff_id.data or "").strip() if form.validate_on_submit() else None
    if raw is None or (raw and not raw.isdigit()):
        abort(400)
    with session_scope(web.engine()) as db:
        conversation = _get(db, conversation_id)
        try:
            conversations.assign(db, conversation, int(raw) if raw else None)
        except ConversationError as refused:
            return _back(conversation_id, str(refused), "error")
        record(db, "assign", conversation.participant_id,
               f"conversation {conversation_id} to staff {raw or 'nobody'}")
    return _back(conversation_id, "Assignment saved.")


@bp.post("/conversations/<int:conversation_id>/resolve")
@requires("conversations.reply")
def conversation_resolve(conversation_id: int) -> Any:
    form = ResolveForm()
    if not form.validate_on_submit():
        return render(conversation_id, status=400, forms={"resolve": form})
    person = me()
    assert person is not None
    with session_scope(web.engine()) as db:
        conversation = _get(db, conversation_id)
        try:
            conversations.resolve(db, conversation, person, form.outcome.data or "", now())
        except ConversationError as refused:
            form.outcome.errors = [str(refused)]
            return render(conversation_id, status=400, forms={"resolve": form})
        record(db, "resolve-conversation", conversation.participant_id,
               f"conversation {conversation_id}: {conversation.outcome}")
    flash("Resolved. Their next text that needs a person opens a new conversation.", "success")
    return redirect(url_for("console.inbox"))


@bp.post("/participants/<int:participant_id>/conversation")
@requires("conversations.reply")
def participant_conversation(participant_id: int) -> Any:
    """Start a conversation from a participant's page (or go to the open one)."""
    person = me()
    assert person is not None
    with session_scope(web.engine()) as db:
        participant = get_participant(db, participant_id)
        found = conversations.open_for(db, participant_id=participant_id)
        conversation = found or conversations.start(db, participant=participant, staff=person,
                                                    moment=now())
        if found is None:
            record(db, "start-conversation", participant_id, f"conversation {conversation.id}")
        conversation_id = conversation.id or 0
    return redirect(url_for("console.conversation", conversation_id=conversation_id) + "#reply")
