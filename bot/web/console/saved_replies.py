"""Saved replies, for coordinators: the texts coaches pick from when they answer a participant.
Each addition, edit and removal is audited (by title: the text itself stays out of the log)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from sqlmodel import Session, select
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from bot import web
from bot.delivery.encoding import encode
from bot.people import saved_replies
from bot.people.saved_replies import MAX_BODY, MAX_TITLE, SavedReplyError
from bot.store.db import session_scope
from bot.store.support import SavedReply, Staff
from bot.web.console import bp
from bot.web.console.auth import me, record, requires
from bot.web.console.forms import ConfirmForm


def _stripped(text: str | None) -> str | None:
    return text.strip() if text else text


class SavedReplyForm(FlaskForm):
    title = StringField(
        "Title", validators=[
            DataRequired("Give the reply a title coaches will recognise."),
            Length(max=MAX_TITLE, message=f"A title has at most {MAX_TITLE} characters.")],
        filters=[_stripped], description="What coaches see in the list, e.g. “Call back today”.")
    body = TextAreaField(
        "Text", validators=[
            DataRequired("Write the text the participant will receive."),
            Length(max=MAX_BODY, message=f"A text has at most {MAX_BODY} characters.")],
        filters=[_stripped],
        description="What the participant will read. Keep it to one text (160 plain "
                    "characters) when you can.",
        render_kw={"rows": 4})


def _length(body: str) -> str:
    """"142 characters, 1 text" (or more texts, and whether special characters halve them)."""
    shape = encode(body)
    texts = f"{shape.segments} text{'s' if shape.segments != 1 else ''}"
    special = "; special characters make each text shorter" if shape.encoding == "UCS-2" else ""
    return f"{shape.characters} characters, {texts}{special}"


def _page(*, add: SavedReplyForm | None = None, edits: dict[int, SavedReplyForm] | None = None,
          status: int = 200) -> Any:
    with session_scope(web.engine()) as db:
        replies = saved_replies.active_saved_replies(db)
        names = {p.id: p.name or p.email for p in db.exec(select(Staff))}
    rows = [
        {"reply": reply, "by": names.get(reply.updated_by, "") if reply.updated_by else "",
         "length": _length(reply.body),
         "form": (edits or {}).get(reply.id or 0) or SavedReplyForm(
             formdata=None, prefix=f"r{reply.id}", title=reply.title, body=reply.body)}
        for reply in replies
    ]
    return render_template(
        "console/saved_replies.html", title="Saved replies", rows=rows,
        form=add or SavedReplyForm(formdata=None), confirm=ConfirmForm(formdata=None),
        open_edit=next(iter(edits or {}), None),
    ), status


def _reply(db: Session, reply_id: int) -> SavedReply:
    found = saved_replies.get_active(db, reply_id)
    if found is None:
        abort(404)
    return found


@bp.get("/replies", endpoint="saved_replies")
@requires("replies.manage")
def saved_replies_page() -> Any:
    return _page()


@bp.post("/replies")
@requires("replies.manage")
def saved_reply_add() -> Any:
    form = SavedReplyForm()
    if not form.validate_on_submit():
        return _page(add=form, status=400)
    try:
        with session_scope(web.engine()) as db:
            reply = saved_replies.add(db, title=form.title.data or "", body=form.body.data or "",
                                      by=me())
            record(db, "add-saved-reply", detail=f"saved reply {reply.id}: {reply.title}")
    except SavedReplyError as exc:
        form.title.errors = [*form.title.errors, str(exc)]
        return _page(add=form, status=400)
    flash(f"“{reply.title}” is saved; coaches can pick it now.", "success")
    return redirect(url_for("console.saved_replies"))


@bp.post("/replies/<int:reply_id>")
@requires("replies.manage")
def saved_reply_edit(reply_id: int) -> Any:
    form = SavedReplyForm(prefix=f"r{reply_id}")
    with session_scope(web.engine()) as db:
        _reply(db, reply_id)
    if not form.validate_on_submit():
        return _page(edits={reply_id: form}, status=400)
    try:
        with session_scope(web.engine()) as db:
            reply = _reply(db, reply_id)
            changed = saved_replies.edit(db, reply=reply, title=form.title.data or "",
                                         body=form.body.data or "", by=me())
            if changed:
                record(db, "edit-saved-reply", detail=f"saved reply {reply_id}: {reply.title} "
                                                      f"({' and '.join(changed)} changed)")
    except SavedReplyError as exc:
        form.title.errors = [*form.title.errors, str(exc)]
        return _page(edits={reply_id: form}, status=400)
    if changed:
        flash(f"“{reply.title}” is saved.", "success")
    else:
        flash("Nothing changed.", "info")
    return redirect(url_for("console.saved_replies"))


@bp.post("/replies/<int:reply_id>/remove")
@requires("replies.manage")
def saved_reply_remove(reply_id: int) -> Any:
    with session_scope(web.engine()) as db:
        reply = _reply(db, reply_id)
        saved_replies.remove(db, reply=reply)
        record(db, "remove-saved-reply", detail=f"saved reply {reply_id}: {reply.title}")
    flash(f"“{reply.title}” is removed; coaches no longer see it.", "success")
    return redirect(url_for("console.saved_replies"))
