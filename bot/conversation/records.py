"""What one inbound text reads and writes in SQL, in as few round trips as the work allows.

The webhook must answer fast and cost little (Twilio waits for it, and texts come in bursts).
On PostgreSQL one statement records the text (once per MessageSid) and reads its sender's
state: the participant, their open crisis alert and conversation, whether decision points wait
for an outcome, and their open questions. One more writes the replies and what the text was.
SQLite, the zero-setup default, cannot put an INSERT inside a WITH, so there each of those is
two statements. Core SQL on this path, prepared once: building and flushing ORM objects costs more
than the statements themselves. The rarer paths (opt-out, crisis, joining) use the ORM session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql import Select
from sqlalchemy.sql.selectable import FromClause
from sqlmodel import Session

from bot.clock import now
from bot.conversation.answers import ANSWER_CANDIDATES, MAX_ANSWER_WINDOW, OpenQuestion
from bot.store.db import insert_or_ignore
from bot.store.models import (
    Alert,
    Answer,
    DecisionPoint,
    Delivery,
    DeliveryStatus,
    InboundMessage,
    Participant,
)
from bot.store.support import Conversation

_PARTICIPANT = Participant.__table__  # type: ignore[attr-defined]
_INBOUND = InboundMessage.__table__  # type: ignore[attr-defined]
_DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
_ANSWER = Answer.__table__  # type: ignore[attr-defined]
_ALERT = Alert.__table__  # type: ignore[attr-defined]
_DECISION = DecisionPoint.__table__  # type: ignore[attr-defined]
_CONVERSATION = Conversation.__table__  # type: ignore[attr-defined]
_PARTICIPANTS = manager_of_class(Participant)


@dataclass
class ReceivedText:
    """An inbound text as recorded: its row's id, the sender, and what they wrote."""

    id: int
    message_sid: str
    from_phone: str
    to_phone: str
    body: str
    participant_id: int | None
    received_at: datetime | None = None


@dataclass
class SenderState:
    """An enrolled sender as the conversation needs them."""

    participant: Participant
    crisis_alert_id: int | None  # their newest unresolved crisis alert
    questions: list[OpenQuestion]  # sent, unanswered, newest first (timeouts not yet applied)
    deciding: bool  # decision points wait for their proximal outcome
    conversation_id: int | None = None  # their open conversation with the study team


def receive(
    session: Session, *, message_sid: str, sender: str, to: str, body: str
) -> tuple[ReceivedText, SenderState | None] | None:
    """Record the text, with its sender's participant id, and read the sender's state; None
    when the MessageSid is recorded already (a retried webhook: nothing else is read)."""
    statements = _statements(session)
    moment = now()
    values = {
        "sender": sender, "text_message_sid": message_sid, "text_to_phone": to,
        "text_body": body, "text_received_at": moment, "asked_since": moment - MAX_ANSWER_WINDOW,
    }
    connection = session.connection()
    if statements.receive is not None:
        rows = connection.execute(statements.receive, values).all()
        if not rows:
            return None
        text_id, participant_id = rows[0].text_id, rows[0].text_participant_id
    else:
        recorded = connection.execute(statements.record, values).first()
        if recorded is None:
            return None
        text_id, participant_id = recorded.id, recorded.participant_id
        rows = []
        if participant_id is not None:
            values["participant_id"] = participant_id
            rows = connection.execute(statements.state, values).all()
    text = ReceivedText(text_id, message_sid, sender, to, body, participant_id, moment)
    if participant_id is None or not rows:
        return text, None
    return text, _state(session, rows)


def record_outcome(
    session: Session, *, text: ReceivedText, intent: str, replies: list[str],
    deliveries: list[dict[str, Any]],
) -> None:
    """Store the replies sent back (as deliveries, so the history shows every message) and what
    the text was: its intent, its reply, its participant (a text that joined has one now)."""
    statements = _statements(session)
    connection = session.connection()
    outcome = {
        "text_id": text.id, "text_intent": intent, "text_reply": "\n".join(replies) or None,
        "text_participant_id": text.participant_id,
    }
    if len(deliveries) == 1 and statements.outcome_with_reply is not None:
        reply = {f"reply_{name}": value for name, value in deliveries[0].items()}
        connection.execute(statements.outcome_with_reply, outcome | reply)
        return
    if deliveries:
        connection.execute(insert(_DELIVERY), deliveries if len(deliveries) > 1 else deliveries[0])
    connection.execute(_OUTCOME, outcome)


def reply_delivery(
    *, participant_id: int, kind: str, body: str, segments: int, encoding: str,
    program_version: str | None, moment: datetime,
) -> dict[str, Any]:
    """The delivery row of a reply given in the webhook's answer (TwiML), as already accepted."""
    return {
        "participant_id": participant_id, "kind": kind, "via": "twiml", "due_at": moment,
        "status": DeliveryStatus.ACCEPTED, "body": body, "segments": segments,
        "encoding": encoding, "sent_at": moment, "program_version": program_version,
        "context": {}, "attempts": 0, "created_at": moment,
    }


# --- the statements, made once per dialect --------------------------------------------------

_REPLY_COLUMNS = (  # the keys of reply_delivery()
    "participant_id", "kind", "via", "due_at", "status", "body", "segments", "encoding",
    "sent_at", "program_version", "context", "attempts", "created_at",
)
_OUTCOME = (
    update(_INBOUND)
    .where(_INBOUND.c.id == bindparam("text_id"))
    .values(intent=bindparam("text_intent"), reply=bindparam("text_reply"),
            participant_id=bindparam("text_participant_id"))
)


@dataclass(frozen=True)
class _Statements:
    record: Any  # the text, with its sender's participant id; RETURNING both
    state: Select[Any]  # the sender's state, by participant id
    receive: Select[Any] | None  # record and state in one (PostgreSQL)
    outcome_with_reply: Any | None  # one reply's delivery and the text's outcome in one


_prepared: dict[str, _Statements] = {}


def _statements(session: Session) -> _Statements:
    dialect = session.get_bind().dialect.name
    if dialect not in _prepared:
        sender_id = select(_PARTICIPANT.c.id).where(_PARTICIPANT.c.phone == bindparam("sender"))
        record = (
            insert_or_ignore(session, _INBOUND)
            .values(
                message_sid=bindparam("text_message_sid"),
                participant_id=sender_id.scalar_subquery(), from_phone=bindparam("sender"),
                to_phone=bindparam("text_to_phone"), body=bindparam("text_body"), intent="",
                reply=None, received_at=bindparam("text_received_at"),
            )
            .returning(_INBOUND.c.id, _INBOUND.c.participant_id)
        )
        state = _state_select(_PARTICIPANT).where(
            _PARTICIPANT.c.id == bindparam("participant_id")
        )
        receive = outcome = None
        if dialect == "postgresql":
            recorded = record.cte("recorded")
            source = recorded.outerjoin(
                _PARTICIPANT, _PARTICIPANT.c.id == recorded.c.participant_id
            )
            receive = _state_select(source).add_columns(
                recorded.c.id.label("text_id"),
                recorded.c.participant_id.label("text_participant_id"),
            )
            reply = insert(_DELIVERY).values(
                {name: bindparam(f"reply_{name}") for name in _REPLY_COLUMNS}
            )
            outcome = _OUTCOME.add_cte(reply.cte("reply_delivery"))
        _prepared[dialect] = _Statements(record, state, receive, outcome)
    return _prepared[dialect]


def _state_select(source: FromClause) -> Select[Any]:
    """The participant's row, their open crisis alert, whether decision points wait for an
    outcome, and one row per open question, newest first (one row with none if none is)."""
    answered = (
        select(_ANSWER.c.id)
        .where(_ANSWER.c.participant_id == _PARTICIPANT.c.id,
               _ANSWER.c.delivery_id == _DELIVERY.c.id)
        .exists()
    )
    open_question = and_(
        _DELIVERY.c.participant_id == _PARTICIPANT.c.id,
        _DELIVERY.c.assessment.is_not(None),
        _DELIVERY.c.sent_at.is_not(None),
        _DELIVERY.c.sent_at >= bindparam("asked_since"),
        ~answered,
    )
    crisis = (
        select(_ALERT.c.id)
        .where(_ALERT.c.participant_id == _PARTICIPANT.c.id,
               _ALERT.c.kind == "crisis", _ALERT.c.resolved_at.is_(None))
        .order_by(_ALERT.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    deciding = (
        select(_DECISION.c.id)
        .where(_DECISION.c.participant_id == _PARTICIPANT.c.id,
               _DECISION.c.outcome_status.is_(None))
        .exists()
    )
    talking = (
        select(_CONVERSATION.c.id)
        .where(_CONVERSATION.c.participant_id == _PARTICIPANT.c.id,
               _CONVERSATION.c.resolved_at.is_(None))
        .order_by(_CONVERSATION.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            _PARTICIPANT, crisis.label("crisis_alert_id"), deciding.label("deciding"),
            talking.label("conversation_id"),
            _DELIVERY.c.id.label("question_id"), _DELIVERY.c.kind.label("question_kind"),
            _DELIVERY.c.run_id.label("question_run_id"),
            _DELIVERY.c.sent_at.label("question_sent_at"),
            _DELIVERY.c.assessment.label("question_assessment"),
        )
        .select_from(source.outerjoin(_DELIVERY, open_question))
        .order_by(_DELIVERY.c.sent_at.desc(), _DELIVERY.c.id.desc())
        .limit(ANSWER_CANDIDATES)
    )


def _state(session: Session, rows: list[Any]) -> SenderState | None:
    first = rows[0]._mapping
    if first[_PARTICIPANT.c.id] is None:
        return None  # erased since the text came in
    questions = [
        OpenQuestion(row.question_id, row.question_kind, row.question_run_id,
                     row.question_sent_at, row.question_assessment or {})
        for row in rows if row.question_id is not None
    ]
    participant = _attach(session, {c.name: first[c] for c in _PARTICIPANT.columns})
    return SenderState(participant, first["crisis_alert_id"], questions, bool(first["deciding"]),
                       first["conversation_id"])


def _attach(session: Session, values: dict[str, Any]) -> Participant:
    """The session's Participant for this row: the one it holds already, else one made from the
    row as the ORM makes loaded instances (no constructor: the row's values are the object's),
    attached as loaded, so changes to it are flushed like any other."""
    held = session.identity_map.get(identity_key(Participant, values["id"]))
    if held is not None:
        return held  # type: ignore[no-any-return]
    participant = _PARTICIPANTS.new_instance()
    participant.__dict__.update(values)
    make_transient_to_detached(participant)
    session.add(participant)
    return participant
