"""Inbound texts: record each once, honor consent and safety first, then credit answers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, col, select

from bot.care import engine, hub
from bot.care.assessments import parse, prompt_hint, question_from_spec
from bot.care.context import message_context
from bot.care.narrative import NarrativeError, render
from bot.care.programs import Program
from bot.clock import as_utc, now
from bot.conversation import crisis
from bot.conversation.intents import Intent, classify, keyword_of
from bot.delivery.encoding import encode
from bot.participants import consent
from bot.participants import enrollment as participants
from bot.participants.phones import PhoneNumberError, mask, normalize
from bot.settings import Settings
from bot.store.db import insert_or_ignore
from bot.store.models import (
    Alert,
    AlertMessage,
    Answer,
    Delivery,
    DeliveryStatus,
    InboundMessage,
    InterventionRun,
    Participant,
)

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


def help_text(
    settings: Settings, program: Program | None, programs: Mapping[str, Program]
) -> str:
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


ProgramSource = Mapping[str, Program] | Callable[[], Mapping[str, Program]]


class _Programs:
    """The programs, read only when a reply needs them and never able to fail: consent
    keywords, crisis language and HELP are handled whatever state the content is in."""

    def __init__(self, source: ProgramSource):
        self._source = source
        self._loaded: Mapping[str, Program] | None = None

    def all(self) -> Mapping[str, Program]:
        if self._loaded is None:
            try:
                self._loaded = self._source() if callable(self._source) else self._source
            except Exception:
                log.exception("programs could not be read; answering without them")
                self._loaded = {}
        return self._loaded

    def get(self, name: str | None) -> Program | None:
        return self.all().get(name) if name else None


def handle_inbound(
    *, session: Session, settings: Settings, programs: ProgramSource, form: dict[str, str]
) -> InboundResult:
    """Process one inbound text exactly once; returns the replies to send back at once.

    `programs` may be a callable: it is called only once a reply needs program content.
    """
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
        session=session, settings=settings, programs=_Programs(programs), message=message,
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
    programs: _Programs,
    message: InboundMessage,
    participant: Participant | None,
) -> InboundResult:
    body = message.body
    intent = classify(body)
    danger = crisis.detect(body)
    result = InboundResult(intent=str(intent))

    def program_of() -> Program | None:
        return programs.get(participant.program) if participant else None

    def reply(kind: str, text: str, *, versioned: bool = True) -> None:
        if participant is None:
            result.replies.append(encode(text).body)
        else:
            result.replies.append(
                _record_reply(
                    session=session, participant=participant, kind=kind, text=text,
                    program=program_of() if versioned else None,
                )
            )

    # Safety first: crisis language always gets resources, whatever else the text says.
    if danger is not None:
        result.intent = "crisis"
        session.add(
            Alert(
                participant_id=participant.id if participant else None,
                kind="crisis",
                category=danger.category,
                detail=(
                    f"{danger.category}: matched '{danger.phrase}' "
                    f"from {mask(message.from_phone)}"
                ),
                inbound_message_id=message.id,
            )
        )
        log.warning("crisis language from %s (%s)", mask(message.from_phone), danger.category)
        if participant is not None:
            consent.pause(session=session, participant=participant, reason="crisis language")
        reply("safety", safety_reply(settings), versioned=False)
        if intent is not Intent.OPT_OUT:
            return result

    if intent is Intent.OPT_OUT:
        if participant is None:
            return result
        if consent.opt_out(session=session, participant=participant, reason=body.strip()[:60]):
            program = program_of()
            title = program.title if program else "these messages"
            reply(
                "confirmation",
                f"You're unsubscribed from {title} and will get no more messages. "
                f"Text START to resume.",
            )
        return result

    # After crisis language, until a coordinator resolves the alert, every text is kept with it
    # and answered with the resources again: never a join menu or a cheerful default.
    alert = open_crisis_alert(session=session, participant=participant, phone=message.from_phone)
    if alert is not None:
        return _after_crisis(
            session=session, settings=settings, programs=programs, message=message,
            participant=participant, alert=alert, intent=intent, result=result, reply=reply,
        )

    if participant is not None and participant.opted_out_at is not None:
        if intent is Intent.OPT_IN:
            consent.opt_in(session=session, participant=participant, program=program_of(),
                                via=body.strip()[:60])
            program = program_of()
            title = program.title if program else "Tend"
            if participant.paused_at is not None:
                reply("confirmation", f"Welcome back to {title}. {PAUSED_LINE} {STOP_LINE}")
            else:
                reply("confirmation", f"Welcome back to {title}. {STOP_LINE}")
        # Otherwise silence: nothing but the opt-out confirmation is sent after STOP.
        return result

    if intent is Intent.HELP:
        reply("help", help_text(settings, program_of(), programs.all()))
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
        program = program_of()
        contact = (program.contact if program else "") or settings.coordinator_contact
        reply("reply", f"Thanks. Your message is saved for the study team. "
                       f"To reach them directly: {contact}.")
        return result

    program = program_of()
    keyword = keyword_of(body)
    joined = next(
        (p for p in programs.all().values() if keyword and keyword in p.join_keywords), None
    )
    if participant is None:
        if joined is not None:
            return _join(session=session, settings=settings, program=joined, message=message)
        if _answered_recently(session=session, phone=message.from_phone, exclude=message.id):
            return result
        result.intent = "unknown"
        result.replies.append(encode(help_text(settings, None, programs.all())).body)
        return result

    if joined is not None and joined.name == participant.program:
        reply("reply", f"You're already enrolled in {joined.title}. {STOP_LINE}")
        return result

    if intent is Intent.OPT_IN and participant.paused_at is not None:
        reply("reply", f"{PAUSED_LINE} {STOP_LINE}")
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


PAUSED_LINE = "Automated messages stay paused until our team has been in touch with you."
CRISIS_REPEAT_INTERVAL = timedelta(minutes=15)  # the resources again at most this often


def safety_reply(settings: Settings) -> str:
    """The reply to crisis language. It names the resources and what Tend does; it promises
    that a person will reach out only when one has actually been told, and no notification
    channel reaches a person yet, so it does not."""
    return (
        f"We care about your safety. {settings.crisis_resources} "
        f"Automated messages are paused and your message is saved for the study team."
    )


def open_crisis_alert(
    *, session: Session, participant: Participant | None, phone: str
) -> Alert | None:
    """The newest unresolved crisis alert of this participant, or of this number if it is not
    enrolled (the alert's first text came from it)."""
    query = select(Alert).where(Alert.kind == "crisis", col(Alert.resolved_at).is_(None))
    if participant is not None:
        query = query.where(Alert.participant_id == participant.id)
    else:
        query = query.join(
            InboundMessage, col(InboundMessage.id) == col(Alert.inbound_message_id)
        ).where(InboundMessage.from_phone == phone, col(Alert.participant_id).is_(None))
    return session.exec(query.order_by(col(Alert.id).desc())).first()


def _after_crisis(
    *,
    session: Session,
    settings: Settings,
    programs: _Programs,
    message: InboundMessage,
    participant: Participant | None,
    alert: Alert,
    intent: Intent,
    result: InboundResult,
    reply: Callable[..., None],
) -> InboundResult:
    """A text while a crisis alert is open: kept with the alert, answered with the resources
    (at most every CRISIS_REPEAT_INTERVAL), HELP and START answered truthfully."""
    session.add(AlertMessage(alert_id=alert.id or 0, inbound_message_id=message.id or 0))
    result.intent = "crisis-followup"
    if participant is not None and intent is Intent.OPT_IN and participant.opted_out_at:
        consent.opt_in(session=session, participant=participant, program=programs.get(
            participant.program), via=message.body.strip()[:60])
        reply("confirmation", f"You're subscribed again. {PAUSED_LINE} "
                              f"{settings.crisis_resources}")
        return result
    if intent is Intent.HELP:
        program = programs.get(participant.program) if participant else None
        reply("help", f"{help_text(settings, program, programs.all())} "
                      f"{settings.crisis_resources}", versioned=False)
        return result
    if participant is not None and participant.opted_out_at is not None:
        return result  # opted out: nothing but the confirmation; the text stays with the alert
    if _safety_sent_recently(session=session, phone=message.from_phone, exclude=message.id):
        return result
    if intent is Intent.OPT_IN:
        reply("safety", f"{PAUSED_LINE} {settings.crisis_resources}", versioned=False)
    else:
        reply("safety", safety_reply(settings), versioned=False)
    return result


def _safety_sent_recently(*, session: Session, phone: str, exclude: int | None) -> bool:
    since = now() - CRISIS_REPEAT_INTERVAL
    return session.exec(
        select(InboundMessage.id).where(
            InboundMessage.from_phone == phone,
            col(InboundMessage.intent).in_(("crisis", "crisis-followup")),
            col(InboundMessage.reply).is_not(None),
            InboundMessage.received_at >= since,
            InboundMessage.id != exclude,
        )
    ).first() is not None


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
    try:
        with session.begin_nested():
            participant = participants.enroll(
                session=session,
                phone=message.from_phone,
                program=program,
                timezone=settings.default_timezone,
                via="keyword",
                welcome_now=False,
            )
    except IntegrityError:
        # The same number joined in a concurrent request (a double-tapped JOIN): that one
        # enrolled them; this text is answered as a repeat, never lost.
        found = participants.find_by_phone(session=session, phone=message.from_phone)
        if found is None:
            raise
        message.participant_id = found.id
        text = _record_reply(
            session=session, participant=found, kind="reply", program=program,
            text=f"You're already enrolled in {program.title}. {STOP_LINE}",
        )
        return InboundResult(replies=[text], intent="join")
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
    if not engine.add_answer(session, answer):
        # Another reply (or the question's timeout) took this question a moment ago, in a
        # transaction that had not committed when this one looked: credit the next one.
        return _credit_answer(session=session, participant=participant, message=message,
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
    engine.settle_decisions(session=session, participant_id=participant.id, moment=moment)
    if prompt.kind == "state":
        hub.request(participant, "state", moment)
        session.add(participant)
    elif prompt.run_id is not None:
        run = session.get(InterventionRun, prompt.run_id)
        if run is not None and run.ended_at is None and engine.run_is_over(session, run, moment):
            hub.request(participant, "ended", moment)
            session.add(participant)
