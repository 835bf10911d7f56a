"""Saved replies: texts coordinators keep ready so a coach can answer quickly and well.

A removed reply keeps its row (removed_at): a conversation that used it can still say which.
"""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from bot.clock import now
from bot.store.support import SavedReply, Staff

MAX_TITLE = 120
MAX_BODY = 1600  # the provider refuses longer texts


class SavedReplyError(ValueError):
    """A saved reply that cannot be kept as given, with a reason the coordinator can act on."""


def active_saved_replies(db: Session) -> list[SavedReply]:
    """The replies a coach may pick, by title."""
    return list(db.exec(
        select(SavedReply).where(col(SavedReply.removed_at).is_(None))
        .order_by(func.lower(SavedReply.title), col(SavedReply.id))
    ))


def get_active(db: Session, reply_id: int) -> SavedReply | None:
    reply = db.get(SavedReply, reply_id)
    return reply if reply is not None and reply.removed_at is None else None


def _checked(db: Session, title: str, body: str, keep: int | None = None) -> tuple[str, str]:
    title, body = title.strip(), body.strip()
    if not title:
        raise SavedReplyError("Give the reply a title coaches will recognise.")
    if len(title) > MAX_TITLE:
        raise SavedReplyError(f"A title has at most {MAX_TITLE} characters.")
    if not body:
        raise SavedReplyError("Write the text the participant will receive.")
    if len(body) > MAX_BODY:
        raise SavedReplyError(f"A text has at most {MAX_BODY} characters; this one has "
                              f"{len(body)}.")
    same = db.exec(select(SavedReply.id).where(
        func.lower(SavedReply.title) == title.lower(), col(SavedReply.removed_at).is_(None),
        col(SavedReply.id) != (keep or 0),
    )).first()
    if same is not None:
        raise SavedReplyError(f"Another saved reply is called {title!r}; choose another title.")
    return title, body


def add(db: Session, *, title: str, body: str, by: Staff | None) -> SavedReply:
    title, body = _checked(db, title, body)
    reply = SavedReply(title=title, body=body, updated_by=by.id if by else None,
                       updated_at=now())
    db.add(reply)
    db.flush()
    return reply


def edit(db: Session, *, reply: SavedReply, title: str, body: str, by: Staff | None) -> list[str]:
    """Save a new title and text; returns what changed ("title", "text"), nothing if neither."""
    title, body = _checked(db, title, body, keep=reply.id)
    changed = [name for name, old, new in (("title", reply.title, title),
                                           ("text", reply.body, body)) if old != new]
    if changed:
        reply.title, reply.body = title, body
        reply.updated_by, reply.updated_at = (by.id if by else None), now()
        db.add(reply)
    return changed


def remove(db: Session, *, reply: SavedReply) -> None:
    """Coaches no longer see it; the row stays (the audit log names who removed it)."""
    reply.removed_at = now()
    db.add(reply)
