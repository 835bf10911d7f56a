"""Crediting a reply to the open question that asked it (narratives/README.md, "Replies")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, update
from sqlmodel import Session

from bot.care import hub
from bot.care.assessments import Parsed, Question, parse, prompt_hint, question_from_spec
from bot.care.outcomes import run_is_over, settle_decisions
from bot.clock import as_utc, now
from bot.store.db import insert_or_ignore
from bot.store.models import Answer, Delivery, InterventionRun, Participant

if TYPE_CHECKING:
    from bot.conversation.records import ReceivedText

ANSWER_WINDOW = timedelta(hours=36)  # a reply this long after a question still answers it
MAX_ANSWER_WINDOW = timedelta(days=7)  # no question stays open longer, whatever its timeout
ANSWER_CANDIDATES = 20  # the newest open questions a reply is read against

_ANSWER = Answer.__table__  # type: ignore[attr-defined]
_DELIVERY = Delivery.__table__  # type: ignore[attr-defined]
_CLARIFIED = (
    update(_DELIVERY)
    .where(_DELIVERY.c.id == bindparam("question_id"))
    .values(assessment=bindparam("clarified_assessment"))
)
_answer_statements: dict[str, Any] = {}  # INSERT ... ON CONFLICT DO NOTHING, per dialect


@dataclass(frozen=True)
class OpenQuestion:
    """A question sent to the participant that has no answer yet (its delivery's fields)."""

    id: int
    kind: str
    run_id: int | None
    sent_at: datetime
    assessment: dict[str, Any]

    def open_at(self, moment: datetime) -> bool:
        """Whether a reply at `moment` still answers it: within its timeout, 36 hours if unset."""
        hours = self.assessment.get("timeout_hours")
        window = timedelta(hours=float(hours)) if hours else ANSWER_WINDOW
        return as_utc(self.sent_at) + window >= moment


def credit_answer(
    *, session: Session, participant: Participant, text: ReceivedText,
    questions: list[OpenQuestion], deciding: bool,
) -> str | bool:
    """Credit the reply to the question that asked it; returns the text to answer with.

    The rule (narratives/README.md, "Replies"): the open questions are those sent within their
    timeout (36 hours unless the program says otherwise) with no answer yet. The newest open
    question that can read the reply gets it, so "4" still answers a 1-5 question after a later
    yes/no one. If none can read it, the newest asks once to clarify; an unreadable second
    reply is kept as text. `questions` are the participant's unanswered ones, newest first;
    `deciding` says whether decision points wait for an outcome this answer may give.
    """
    moment = now()
    candidates = [question for question in questions if question.open_at(moment)]
    while candidates:
        question, reading, parsed = _reading(candidates, text.body)
        spec = question.assessment
        if not parsed.ok and not spec.get("clarified"):
            session.connection().execute(_CLARIFIED, {
                "question_id": question.id, "clarified_assessment": {**spec, "clarified": True},
            })
            return str(
                spec.get("clarify") or f"Sorry, I didn't catch that. {prompt_hint(reading)}"
            )
        if _record_answer(session, participant, question, reading, parsed, text, moment):
            _after_answer(session=session, participant=participant, question=question,
                          moment=moment, deciding=deciding)
            return str(spec.get("thanks") or "Thanks, noted.") if parsed.ok else True
        # Another reply (or the question's timeout) took this question a moment ago, in a
        # transaction that had not committed when this one looked: credit the next one.
        candidates.remove(question)
    return False


def _reading(
    candidates: list[OpenQuestion], body: str
) -> tuple[OpenQuestion, Question, Parsed]:
    """The question the reply answers and how it reads; the newest one, unread, if none can."""
    readings = [(q, question_from_spec(q.assessment)) for q in candidates]
    # A typed question (yes/no, scale, choice, number) that can read the reply wins over a
    # free-text question, which can read anything: "Yes" answers the dose check even after a
    # later "what got in the way?".
    typed = [(q, r) for q, r in readings if r.kind != "text"]
    free = [(q, r) for q, r in readings if r.kind == "text"]
    for question, reading in typed + free:
        if (parsed := parse(reading, body)).ok:
            return question, reading, parsed
    question, reading = readings[0]
    return question, reading, parse(reading, body)


def _record_answer(
    session: Session, participant: Participant, question: OpenQuestion, reading: Question,
    parsed: Parsed, text: ReceivedText, moment: datetime,
) -> bool:
    """Insert the answer unless the question has one already (one question, one answer, by the
    unique constraint); True if it went in."""
    value, label = None, None
    if parsed.ok:
        if isinstance(parsed.value, bool):
            value = 1.0 if parsed.value else 0.0
        elif isinstance(parsed.value, int | float):
            value = float(parsed.value)
        elif reading.kind == "choice":
            label = str(parsed.value)
            value = float(reading.choices.index(label) + 1)
        else:
            label = str(parsed.value)
    dialect = session.get_bind().dialect.name
    statement = _answer_statements.get(dialect)
    if statement is None:
        statement = insert_or_ignore(session, _ANSWER).returning(_ANSWER.c.id)
        _answer_statements[dialect] = statement
    return session.connection().execute(statement, {
        "participant_id": participant.id or 0, "delivery_id": question.id,
        "inbound_message_id": text.id, "raw": text.body, "missing": False, "value": value,
        "label": label, "answered_at": moment,
    }).first() is not None


def _after_answer(
    *, session: Session, participant: Participant, question: OpenQuestion, moment: datetime,
    deciding: bool,
) -> None:
    """An answer may settle decision points, feed the hub's state, or complete an intervention."""
    assert participant.id is not None
    if deciding:
        settle_decisions(session=session, participant_id=participant.id, moment=moment)
    if question.kind == "state":
        hub.request(participant, "state", moment)
        session.add(participant)
    elif question.run_id is not None:
        run = session.get(InterventionRun, question.run_id)
        if run is not None and run.ended_at is None and run_is_over(session, run, moment):
            hub.request(participant, "ended", moment)
            session.add(participant)
