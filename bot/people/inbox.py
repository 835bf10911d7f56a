"""What the inbox shows: open conversations, crisis first, then who has waited longest; and one
conversation's messages, both ways, with each text's delivery status and author.

The list costs three queries whatever its length: the conversations with their participants and
staff, then the last messages of all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, literal, null, or_, union_all
from sqlalchemy import select as core_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from bot.people.participants import Status, status_of
from bot.store.models import Delivery, DeliveryStatus, InboundMessage, Participant
from bot.store.support import Conversation, Staff, StaffNote

FOLDERS = {"mine": "Mine", "unassigned": "Unassigned", "all": "All open"}
LAST_MESSAGES = 3
LIMIT = 200  # open conversations shown at once
CONTEXT = timedelta(days=2)  # a thread shows the texts of this long before it opened
THREAD = 200  # messages in a thread at most


@dataclass
class Message:
    at: datetime
    inbound: bool  # from the participant
    body: str | None  # None: this viewer may not read it
    kind: str = ""  # a delivery's kind (staff, safety, event, ...)
    status: str = ""  # a delivery's status
    author: str = ""  # the staff member who wrote it
    error: str = ""
    id: int = 0


@dataclass
class Item:
    conversation: Conversation
    participant: Participant | None
    status: Status | None
    assignee: str
    past_target: bool
    last: list[Message] = field(default_factory=list)


def _folder(query, folder: str, staff_id: int | None):  # type: ignore[no-untyped-def]
    if folder == "mine":
        return query.where(col(Conversation.assigned_to) == staff_id)
    if folder == "unassigned":
        return query.where(col(Conversation.assigned_to).is_(None))
    return query


def counts(session: Session, staff_id: int | None) -> dict[str, int]:
    """How many open conversations each folder holds."""
    base = select(func.count()).select_from(Conversation).where(
        col(Conversation.resolved_at).is_(None))
    return {name: session.exec(_folder(base, name, staff_id)).one() for name in FOLDERS}


def inbox(session: Session, *, folder: str, staff_id: int | None, moment: datetime,
          bodies: bool) -> list[Item]:
    """The open conversations of a folder, crisis first, then longest waiting, then oldest."""
    assignee = aliased(Staff)
    query = _folder(
        select(Conversation, Participant, assignee)
        .outerjoin(Participant, col(Participant.id) == col(Conversation.participant_id))
        .outerjoin(assignee, col(assignee.id) == col(Conversation.assigned_to))
        .where(col(Conversation.resolved_at).is_(None)),
        folder, staff_id,
    ).order_by(
        col(Conversation.severity), col(Conversation.waiting_since).is_(None),
        col(Conversation.waiting_since), col(Conversation.opened_at), col(Conversation.id),
    ).limit(LIMIT)
    items = [
        Item(conversation, participant, status_of(participant) if participant else None,
             (person.name or person.email) if person else "",
             conversation.target_at is not None and conversation.target_at <= moment)
        for conversation, participant, person in session.exec(query).all()
    ]
    last = _last_messages(session, [i.conversation for i in items], bodies)
    for item in items:
        item.last = last.get(item.conversation.id or 0, [])
    return items


def _messages(conversations: list[Conversation], since: dict[int, datetime]):  # type: ignore[no-untyped-def]
    """Inbound and outbound messages of these conversations' people since their `since`."""
    by_person = {c.participant_id: c for c in conversations if c.participant_id is not None}
    by_phone = {c.phone: c for c in conversations if c.participant_id is None}

    def window(moment_column, owner_column, owners: dict) -> object:  # type: ignore[no-untyped-def]
        return or_(*[(owner_column == owner) & (moment_column >= since[c.id or 0])
                     for owner, c in owners.items()]) if owners else literal(False)

    inbound = core_select(
        InboundMessage.id, InboundMessage.received_at.label("at"), literal(True).label("inbound"),
        InboundMessage.body, literal("").label("kind"), literal("").label("status"),
        null().label("staff_id"), literal("").label("error"),
        InboundMessage.participant_id, InboundMessage.from_phone.label("phone"),
    ).where(or_(
        window(InboundMessage.received_at, InboundMessage.participant_id, by_person),
        window(InboundMessage.received_at, InboundMessage.from_phone, by_phone)
        if by_phone else literal(False),
    ))
    outbound = core_select(
        Delivery.id, func.coalesce(Delivery.sent_at, Delivery.created_at).label("at"),
        literal(False).label("inbound"), Delivery.body, Delivery.kind, Delivery.status,
        Delivery.staff_id, func.coalesce(Delivery.error_message, "").label("error"),
        Delivery.participant_id, literal("").label("phone"),
    ).where(
        window(Delivery.created_at, Delivery.participant_id, by_person),
        col(Delivery.body).is_not(None),
        or_(col(Delivery.status) != DeliveryStatus.CANCELLED, col(Delivery.staff_id).is_not(None)),
    )
    parts = [inbound, outbound]
    if by_phone:  # a sender who is not enrolled: the bot's answers are kept on their texts
        parts.append(core_select(
            InboundMessage.id, InboundMessage.received_at.label("at"),
            literal(False).label("inbound"), InboundMessage.reply.label("body"),
            literal("reply").label("kind"), literal("").label("status"), null(),
            literal("").label("error"), InboundMessage.participant_id,
            InboundMessage.from_phone.label("phone"),
        ).where(window(InboundMessage.received_at, InboundMessage.from_phone, by_phone),
                col(InboundMessage.participant_id).is_(None),
                col(InboundMessage.reply).is_not(None)))
    return union_all(*parts).subquery()


def _as_message(row, bodies: bool, names: dict[int, str]) -> Message:  # type: ignore[no-untyped-def]
    return Message(
        at=row.at, inbound=bool(row.inbound), body=row.body if bodies else None,
        kind=row.kind or "", status=row.status or "", error=row.error or "",
        author=names.get(row.staff_id, "") if row.staff_id else "", id=row.id,
    )


def _names(session: Session) -> dict[int, str]:
    return {s.id or 0: s.name or s.email for s in session.exec(select(Staff)).all()}


def _last_messages(session: Session, conversations: list[Conversation],
                   bodies: bool) -> dict[int, list[Message]]:
    if not conversations:
        return {}
    since = {c.id or 0: c.opened_at for c in conversations}
    messages = _messages(conversations, since)
    ranked = core_select(
        messages, func.row_number().over(
            partition_by=(messages.c.participant_id, messages.c.phone),
            order_by=(messages.c.at.desc(), messages.c.inbound.asc(), messages.c.id.desc()),
        ).label("place"),
    ).subquery()
    rows = session.execute(
        core_select(ranked).where(ranked.c.place <= LAST_MESSAGES)
        .order_by(ranked.c.at, ranked.c.inbound.desc(), ranked.c.id)
    ).all()
    owner = {(c.participant_id, c.phone if c.participant_id is None else ""): c.id or 0
             for c in conversations}
    names = _names(session)
    found: dict[int, list[Message]] = {}
    for row in rows:
        key = (row.participant_id, "" if row.participant_id is not None else row.phone)
        if key in owner:
            found.setdefault(owner[key], []).append(_as_message(row, bodies, names))
    return found


def thread(session: Session, conversation: Conversation, bodies: bool) -> list[Message]:
    """The conversation's messages, oldest first, from a little before it opened."""
    since = {conversation.id or 0: conversation.opened_at - CONTEXT}
    messages = _messages([conversation], since)
    rows = session.execute(
        core_select(messages).order_by(messages.c.at.desc(), messages.c.inbound.asc(),
                                       messages.c.id.desc()).limit(THREAD)
    ).all()
    names = _names(session)
    return [_as_message(row, bodies, names) for row in reversed(rows)]


def notes(session: Session, conversation: Conversation) -> list[tuple[StaffNote, str]]:
    """The staff notes kept on this conversation, oldest first, with their authors."""
    rows = session.exec(
        select(StaffNote, Staff).join(Staff, col(Staff.id) == col(StaffNote.staff_id))
        .where(col(StaffNote.conversation_id) == conversation.id)
        .order_by(col(StaffNote.created_at))
    ).all()
    return [(note, person.name or person.email) for note, person in rows]
