"""Inbound texts: record each once, honor consent and safety first, then credit answers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, col, select

from bot import crisis, engine, hub, participants
from bot.assessments import parse, prompt_hint, question_from_spec
from bot.clock import as_utc, now
from bot.db import insert_or_ignore
from bot.encoding import encode
from bot.intents import Intent, classify, keyword_of
from bot.models import (
    Alert,
    Answer,
    Delivery,
    DeliveryStatus,
    InboundMessage,
    InterventionRun,
    Participant,
)
from bot.narrative import NarrativeError, render
from bot.phones import PhoneNumberError, mask, normalize
from bot.programs import Program
from bot.sending import message_context
from bot.settings import Settings

log = logging.getLogger(__name__)

UNKNOWN_REPLY_INTERVAL = timedelta(hours=24)  # answer an unknown number at most once a day
ANSWER_WINDOW = timedelta(hours=36)  # a reply this long after a question still answers it
MAX_ANSWER_WINDOW = timedelta(days=7)  # no question stays open longer, whatever its timeout


class InboundError(ValueError):
    """A webhook body that is not an inbound text (missing or malformed fields)."""


@dataclass
class InboundResult:
    replies: list[str] = field(default_factory=list)
    duplicate: bool = False
    intent: str = ""


STOP_LINE = "Reply STOP to stop, HELP for help."


def help_text(settings: Settings, program: Program | None, programs: dict[str, Program]) -> str:
    if program is None:
        joins = ", ".join(k for p in programs.values() for k in p.join_keywords[:1])
        joins = joins or "the word your coordinator gave you"
        return (
            f"Tend text-message programs. To join, text {joins}. "
            f"Questions: {settings.coordinator_contact}. Text STOP to stop."
        )
    contact = program.contact or settings.coordinator_contact
    return (
        f"{program.title}: {program.frequency}. Questions: {contact}. "
        f"Text STOP to stop, START to resume. Msg&data rates may apply."
    )


def _record_reply(
    *, session: Session, participant: Participant, kind: str, text: str, program: Program | None
) -> str:
    """Store a webhook (TwiML) reply as a delivery, so the history shows every message sent."""
    encoded = encode(text)
    moment = now()
    session.add(
        Delivery(
            participant_id=participant.id,
            kind=kind,
            via="twiml",
            due_at=moment,
            status=DeliveryStatus.ACCEPTED,
            body=encoded.body,
            segments=encoded.segments,
            encoding=encoded.encoding,
            sent_at=moment,
            program_version=program.version if program else None,
        )
    )
    return encoded.body


def parse_params(form: dict[str, str]) -> tuple[str, str, str, str]:
    """(MessageSid, From as E.164, To, Body) from Twilio's inbound parameters."""
    missing = [name for name in ("MessageSid", "From") if not form.get(name)]
    if missing:
        raise InboundError(f"inbound text is missing {', '.join(missing)}")
    if "Body" not in form:
        raise InboundError("inbound text is missing Body")
    try:
        sender = normalize(form["From"])
    except PhoneNumberError as exc:
        raise InboundError(f"From is not a phone number: {exc}") from None
    return form["MessageSid"], sender, form.get("To", ""), form["Body"]


def handle_inbound(
    *, session: Session, settings: Settings, programs: dict[str, Program], form: dict[str, str]
) -> InboundResult:
    """Process one inbound text exactly once; returns the replies to send back at once."""
    message_sid, sender, to, body = parse_params(form)
    participant = participants.find_by_phone(session=session, phone=sender)
    message = InboundMessage(
        message_sid=message_sid,
        participant_id=participant.id if participant else None,
        from_phone=sender,
        to_phone=to,
        body=body,
    )
    # One statement both records the text and recognises a retried webhook (no row back),
    # where a savepoint around an ORM flush would cost three round trips and a rollback.
    table = InboundMessage.__table__  # type: ignore[attr-defined]
    message.id = session.exec(
        insert_or_ignore(session, table)
        .values(
            message_sid=message.message_sid,
            participant_id=message.participant_id,
            from_phone=message.from_phone,
            to_phone=message.to_phone,
            body=message.body,
            intent=message.intent,
            reply=message.reply,
            received_at=message.received_at,
        )
        .returning(table.c.id)
    ).scalar()
    if message.id is None:
        log.info("inbound %s already processed; ignoring the retry", message_sid)
        return InboundResult(duplicate=True)
    # The row exists now: let the session track it (intent and reply are updated below).
    make_transient_to_detached(message)
    session.add(message)

    result = _respond(
        session=session, settings=settings, programs=programs, message=message,
        participant=participant,
    )
    message.intent = result.intent
    message.reply = "\n".join(result.replies) or None
    session.add(message)
    return result


def _respond(
    *,
    session: Session,
    settings: Settings,
    programs: dict[str, Program],
    message: InboundMessage,
    participant: Participant | None,
) -> InboundResult:
    body = message.body
    intent = classify(body)
    danger = crisis.detect(body)
    program = programs.get(participant.program) if participant else None
    result = InboundResult(intent=str(intent))

    def reply(kind: str, text: str) -> None:
        if participant is None:
            result.replies.append(encode(text).body)
        else:
            result.replies.append(
                _record_reply(
                    session=session, participant=participant, kind=kind, text=text, program=program
                )
            )

    # Safety first: crisis language always gets resources, whatever else the text says.
    if danger is not None:
        result.intent = "crisis"
        session.add(
            Alert(
                participant_id=participant.id if participant else None,
                kind="crisis",
                detail=(
                    f"{danger.category}: matched '{danger.phrase}' "
                    f"from {mask(message.from_phone)}"
                ),
                inbound_message_id=message.id,
            )
        )
        log.warning("crisis language from %s (%s)", mask(message.from_phone), danger.category)
        if participant is not None:
            participants.pause(session=session, participant=participant, reason="crisis language")
        reply(
            "safety",
            f"We care about your safety. {settings.crisis_resources} "
            f"A member of our team has been told and will reach out.",
        )
        if intent is not Intent.OPT_OUT:
            return result

    if intent is Intent.OPT_OUT:
        if participant is None:
            return result
        if participants.opt_out(session=session, participant=participant, reason=body.strip()[:60]):
            title = program.title if program else "these messages"
            reply(
                "confirmation",
                f"You're unsubscribed from {title} and will get no more messages. "
                f"Text START to resume.",
            )
        return result

    if participant is not None and participant.opted_out_at is not None:
        if intent is Intent.OPT_IN:
            participants.opt_in(session=session, participant=participant, program=program)
            title = program.title if program else "Tend"
            reply("confirmation", f"Welcome back to {title}. {STOP_LINE}")
        # Otherwise silence: nothing but the opt-out confirmation is sent after STOP.
        return result

    if intent is Intent.HELP:
        reply("help", help_text(settings, program, programs))
        return result

    if intent is Intent.HUMAN:
        session.add(
            Alert(
                participant_id=participant.id if participant else None,
                kind="human",
                detail=f"{mask(message.from_phone)} asked to talk to a person: {body[:200]}",
                inbound_message_id=message.id,
            )
        )
        reply("reply", "Thanks. A member of our team will text you back soon.")
        return result

    keyword = keyword_of(body)
    joined = next((p for p in programs.values() if keyword and keyword in p.join_keywords), None)
    if participant is None:
        if joined is not None:
            return _join(session=session, settings=settings, program=joined, message=message)
        if _answered_recently(session=session, phone=message.from_phone, exclude=message.id):
            return result
        result.intent = "unknown"
        result.replies.append(encode(help_text(settings, None, programs)).body)
        return result

    if joined is not None and joined.name == participant.program:
        reply("reply", f"You're already enrolled in {joined.title}. {STOP_LINE}")
        return result

    if intent is Intent.CHECKIN:
        text, recorded = _checkin(session=session, participant=participant, program=program)
        if recorded:
            result.replies.append(text)
        else:
            reply("checkin", text)
        return result

    if (answered := _credit_answer(session=session, participant=participant, message=message)):
        result.intent = "answer"
        if answered is not True:
            reply("reply", answered)
        return result

    result.intent = "other"
    if not _answered_recently(session=session, phone=message.from_phone, exclude=message.id):
        reply("reply", f"Thanks for your message. {STOP_LINE}")
    return result


def _checkin(
    *, session: Session, participant: Participant, program: Program | None
) -> tuple[str, bool]:
    """CHECKIN: the program's state question if it has one (its answer wakes the hub), else
    where the participant stands and the hub looks at them again now. Returns the reply and
    whether it is recorded already (the state question is, as the prompt its answer credits)."""
    if program is None or participant.paused_at is not None:
        return f"Thanks for checking in. {STOP_LINE}", False
    if program.hub is not None and program.hub.state is not None:
        state = program.hub.state
        moment = now()
        prompt = Delivery(
            participant_id=participant.id, kind="state", via="twiml",
            event_key=f"state/{state.key}", template=state.template, due_at=moment,
            status=DeliveryStatus.ACCEPTED, sent_at=moment,
            assessment={**state.assessment.as_dict(), "state_key": state.key},
            program_version=program.version,
        )
        try:
            text = render(program, state.template, message_context(
                session=session, participant=participant, program=program, delivery=prompt))
        except NarrativeError as exc:
            log.error("state question for %s failed to render: %s", program.name, exc)
        else:
            encoded = encode(text)
            prompt.body, prompt.segments = encoded.body, encoded.segments
            prompt.encoding = encoded.encoding
            session.add(prompt)
            return encoded.body, True
    if program.levels:
        hub.request(participant, "checkin")
        session.add(participant)
        run = hub.open_run(session, participant.id or 0)
        if run is not None and (current := program.intervention(run.intervention)):
            return (f"Thanks for checking in. You're working on: {current.title}. "
                    f"Your next message is on its way. {STOP_LINE}"), False
    return f"Thanks for checking in. Your next message comes as planned. {STOP_LINE}", False


def _join(
    *, session: Session, settings: Settings, program: Program, message: InboundMessage
) -> InboundResult:
    participant = participants.enroll(
        session=session,
        phone=message.from_phone,
        program=program,
        timezone=settings.default_timezone,
        via="keyword",
        welcome_now=False,
    )
    message.participant_id = participant.id
    try:
        text = render(program, program.welcome_template, message_context(
            session=session, participant=participant, program=program,
            delivery=Delivery(participant_id=participant.id, kind="welcome", due_at=now()),
            answers=[]))
    except NarrativeError as exc:
        # The enrollment stands; the welcome goes out through the outbox once the template is fixed.
        log.error("welcome for %s failed to render: %s", program.name, exc)
        session.add(
            Delivery(
                participant_id=participant.id,
                kind="welcome",
                template=program.welcome_template,
                due_at=now(),
                program_version=program.version,
            )
        )
        return InboundResult(intent="join")
    body = _record_reply(
        session=session, participant=participant, kind="welcome", text=text, program=program
    )
    return InboundResult(replies=[body], intent="join")


def _answered_recently(*, session: Session, phone: str, exclude: int | None) -> bool:
    """Whether this number got an automatic reply lately (keeps loops and spam quiet)."""
    since = now() - UNKNOWN_REPLY_INTERVAL
    return (
        session.exec(
            select(InboundMessage.id).where(
                InboundMessage.from_phone == phone,
                col(InboundMessage.reply).is_not(None),
                col(InboundMessage.intent).in_(("unknown", "other")),
                InboundMessage.received_at >= since,
                InboundMessage.id != exclude,
            )
        ).first()
        is not None
    )


def _credit_answer(
    *, session: Session, participant: Participant, message: InboundMessage
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
    chosen = next(
        ((p, q, parsed) for p, q in readings if (parsed := parse(q, message.body)).ok), None
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
    session.add(
        Answer(
            participant_id=participant.id,
            delivery_id=prompt.id,
            inbound_message_id=message.id,
            raw=message.body,
            value=value,
            label=label,
            answered_at=moment,
        )
    )
    session.flush()
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
    engine.settle_decisions(session=session, participant_id=participant.id, moment=moment)
    if prompt.kind == "state":
        hub.request(participant, "state", moment)
        session.add(participant)
    elif prompt.run_id is not None:
        run = session.get(InterventionRun, prompt.run_id)
        if run is not None and run.ended_at is None and engine.run_is_over(session, run, moment):
            hub.request(participant, "ended", moment)
            session.add(participant)
