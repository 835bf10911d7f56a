"""Crediting a reply to the open question that asked it (narratives/README.md, "Replies")."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from bot.care import hub
from bot.care.assessments import parse, prompt_hint, question_from_spec
from bot.care.outcomes import add_answer, run_is_over, settle_decisions
from bot.clock import as_utc, now
from bot.store.models import Answer, Delivery, InboundMessage, InterventionRun, Participant

ANSWER_WINDOW = timedelta(hours=36)  # a reply this long after a question still answers it
MAX_ANSWER_WINDOW = timedelta(days=7)  # no question stays open longer, whatever its timeout


def credit_answer(
    *, session: Session, participant: Participant, message: InboundMessage,
    taken: frozenset[int] = frozenset(),
) -> str | bool:
    """Credit the reply to the question that asked it; returns the text to answer with.

    The rule (narratives/README.md, "Replies"): the open questions are those sent within their
    timeout (36 hours unless the program says otherwise) with no answer yet. The newest open
    question that can read the reply gets it, so "4" still answers a 1-5 question after a later
    yes/no one. If none can read it, the newest asks once to clarify; an unreadable second
    reply is kept as text.
    """
    moment = now()
    answered = (
        select(Answer.id)
        .where(Answer.participant_id == participant.id, Answer.delivery_id == Delivery.id)
        .exists()
    )
    prompts = [
        prompt
        for prompt in session.exec(
            select(Delivery)
            .where(
                Delivery.participant_id == participant.id,
                col(Delivery.assessment).is_not(None),
                col(Delivery.sent_at).is_not(None),
                Delivery.sent_at >= moment - MAX_ANSWER_WINDOW,
                col(Delivery.id).not_in(taken),
                ~answered,
            )
            .order_by(col(Delivery.sent_at).desc(), col(Delivery.id).desc())
            .limit(20)
        ).all()
        if as_utc(prompt.sent_at) + _window(prompt) >= moment  # type: ignore[arg-type]
    ]
    if not prompts:
        return False
    readings = [(prompt, question_from_spec(prompt.assessment or {})) for prompt in prompts]
    # A typed question (yes/no, scale, choice, number) that can read the reply wins over a
    # free-text question, which can read anything: "Yes" answers the dose check even after a
    # later "what got in the way?".
    typed = [(p, q) for p, q in readings if q.kind != "text"]
    free = [(p, q) for p, q in readings if q.kind == "text"]
    chosen = next(
        ((p, q, parsed) for p, q in typed + free if (parsed := parse(q, message.body)).ok), None
    )
    if chosen is None:
        prompt, question = readings[0]
        spec = prompt.assessment or {}
        if not spec.get("clarified"):
            prompt.assessment = {**spec, "clarified": True}
            session.add(prompt)
            return str(
                spec.get("clarify") or f"Sorry, I didn't catch that. {prompt_hint(question)}"
            )
        parsed = parse(question, message.body)
    else:
        prompt, question, parsed = chosen
    spec = prompt.assessment or {}
    value, label = None, None
    if parsed.ok:
        if isinstance(parsed.value, bool):
            value = 1.0 if parsed.value else 0.0
        elif isinstance(parsed.value, int | float):
            value = float(parsed.value)
        elif question.kind == "choice":
            label = str(parsed.value)
            value = float(question.choices.index(label) + 1)
        else:
            label = str(parsed.value)
    answer = Answer(
        participant_id=participant.id or 0,
        delivery_id=prompt.id or 0,
        inbound_message_id=message.id,
        raw=message.body,
        value=value,
        label=label,
        answered_at=moment,
    )
    if not add_answer(session, answer):
        # Another reply (or the question's timeout) took this question a moment ago, in a
        # transaction that had not committed when this one looked: credit the next one.
        return credit_answer(session=session, participant=participant, message=message,
                              taken=taken | {prompt.id or 0})
    _after_answer(session=session, participant=participant, prompt=prompt, moment=moment)
    return str(spec.get("thanks") or "Thanks, noted.") if parsed.ok else True


def _window(prompt: Delivery) -> timedelta:
    hours = (prompt.assessment or {}).get("timeout_hours")
    return timedelta(hours=float(hours)) if hours else ANSWER_WINDOW


def _after_answer(
    *, session: Session, participant: Participant, prompt: Delivery, moment: datetime
) -> None:
    """An answer may settle decision points, feed the hub's state, or complete an intervention."""
    assert participant.id is not None
    settle_decisions(session=session, participant_id=participant.id, moment=moment)
    if prompt.kind == "state":
        hub.request(participant, "state", moment)
        session.add(participant)
    elif prompt.run_id is not None:
        run = session.get(InterventionRun, prompt.run_id)
        if run is not None and run.ended_at is None and run_is_over(session, run, moment):
            hub.request(participant, "ended", moment)
            session.add(participant)
