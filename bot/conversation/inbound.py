"""Inbound texts: record each once, honor consent and safety first, then credit answers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.care import hub
from bot.care.context import message_context
from bot.care.narrative import NarrativeError, render
from bot.care.programs import Program
from bot.clock import now
from bot.conversation import crisis
from bot.conversation.answers import credit_answer
from bot.conversation.intents import Intent, classify, keyword_of
from bot.conversation.records import ReceivedText, SenderState, receive, record_outcome
from bot.conversation.replies import STOP_LINE, InboundResult, help_text, replied_recently
from bot.conversation.safety import (
    PAUSED_LINE,
    after_crisis,
    open_crisis_alert,
    raise_crisis,
    safety_reply,
)
from bot.delivery.encoding import encode
from bot.participants import consent
from bot.participants import enrollment as participants
from bot.participants.phones import PhoneNumberError, mask, normalize
from bot.people import conversations
from bot.people.escalation import acknowledgement_by_sms
from bot.settings import Settings
from bot.store.models import Alert, Delivery, DeliveryStatus, Participant

log = logging.getLogger(__name__)

UNKNOWN_REPLY_INTERVAL = timedelta(hours=24)  # answer an unknown number at most once a day
UNKNOWN_OR_OTHER = ("unknown", "other")

__all__ = ["InboundError", "InboundResult", "handle_inbound", "parse_params"]


class InboundError(ValueError):
    """A webhook body that is not an inbound text (missing or malformed fields)."""


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
    # Recording the text recognises a retried webhook (its MessageSid is recorded already).
    received = receive(session, message_sid=message_sid, sender=sender, to=to, body=body)
    if received is None:
        log.info("inbound %s already processed; ignoring the retry", message_sid)
        return InboundResult(duplicate=True)
    message, state = received
    acknowledged = acknowledgement_by_sms(session, settings, sender, body, now())
    if acknowledged is not None:  # an on-call person's ACK: the escalation stops
        result = InboundResult(intent="acknowledgement")
        result.add(acknowledged)
    else:
        result = _respond(
            session=session, settings=settings, programs=_Programs(programs), message=message,
            state=state,
        )
        _to_a_person(session, settings, message, state, result)
    record_outcome(session, text=message, intent=result.intent, replies=result.replies,
                   deliveries=result.deliveries)
    return result


def _respond(
    *,
    session: Session,
    settings: Settings,
    programs: _Programs,
    message: ReceivedText,
    state: SenderState | None,
) -> InboundResult:
    """Safety and consent first, whatever the content says; then everything else."""
    body = message.body
    intent = classify(body)
    danger = crisis.detect(body)
    result = InboundResult(intent=str(intent))
    participant = state.participant if state else None

    def program_of() -> Program | None:
        return programs.get(participant.program) if participant else None

    def reply(kind: str, text: str, *, versioned: bool = True) -> None:
        result.add(text, participant=participant, kind=kind,
                   program=program_of() if versioned else None)

    # Safety first: crisis language always gets resources, whatever else the text says.
    if danger is not None:
        result.intent, result.needs_person = "crisis", "crisis"
        result.alert_id = raise_crisis(session=session, message=message,
                                       participant=participant, danger=danger).id
        reply("safety", safety_reply(settings, participant.timezone if participant else None),
              versioned=False)
        if intent is not Intent.OPT_OUT:
            return result

    if intent is Intent.OPT_OUT:
        if participant is None:
            return result
        if consent.opt_out(session=session, participant=participant, reason=body.strip()[:60]):
            program = program_of()
            title = program.title if program else "these messages"
            reply("confirmation", f"You're unsubscribed from {title} and will get no more "
                                  f"messages. Text START to resume.")
        return result

    # After crisis language, until a coordinator resolves the alert, every text is kept with it
    # and answered with the resources again: never a join menu or a cheerful default.
    alert_id = state.crisis_alert_id if state else open_crisis_alert(
        session=session, phone=message.from_phone)
    if alert_id is not None:
        return after_crisis(
            session=session, settings=settings, programs=programs, message=message,
            participant=participant, alert_id=alert_id, intent=intent, result=result,
            reply=reply,
        )

    if participant is not None and participant.opted_out_at is not None:
        if intent is Intent.OPT_IN:
            program = program_of()
            consent.opt_in(session=session, participant=participant, program=program,
                           via=body.strip()[:60])
            title = program.title if program else "Tend"
            paused = f" {PAUSED_LINE}" if participant.paused_at is not None else ""
            reply("confirmation", f"Welcome back to {title}.{paused} {STOP_LINE}")
        # Otherwise silence: nothing but the opt-out confirmation is sent after STOP.
        return result

    if intent is Intent.HELP:
        reply("help", help_text(settings, program_of(), programs.all()))
        return result

    if intent is Intent.HUMAN:
        result.needs_person = "human"
        session.add(_person_asked(message, participant))
        contact = getattr(program_of(), "contact", "") or settings.coordinator_contact
        reply("reply", f"Thanks. Your message is saved for the study team. "
                       f"To reach them directly: {contact}.")
        return result

    return _everyday(
        session=session, settings=settings, programs=programs, message=message, state=state,
        intent=intent, result=result, reply=reply, program_of=program_of,
    )


def _to_a_person(session: Session, settings: Settings, message: ReceivedText,
                 state: SenderState | None, result: InboundResult) -> None:
    """Into the study team's inbox: a text that needs a person opens a conversation, and every
    text of someone in one joins it (bot.people.conversations)."""
    participant = state.participant if state else None
    reason = result.needs_person
    if reason is None and participant is not None and participant.paused_at is not None \
            and participant.opted_out_at is None:
        reason = "paused"
    if reason is None and state is not None and state.conversation_id is None:
        return  # nothing for a person, and no conversation to join: not one query more
    conversations.note_text(
        session, settings, participant_id=participant.id if participant else None,
        phone=message.from_phone, reason=reason, moment=message.received_at or now(),
        alert_id=result.alert_id,
        conversation_id=state.conversation_id if state else None,
    )


def _person_asked(message: ReceivedText, participant: Participant | None) -> Alert:
    """The alert, for the study team, of a text that asks for a person."""
    return Alert(
        participant_id=participant.id if participant else None, kind="human",
        detail=f"{mask(message.from_phone)} asked to talk to a person: {message.body[:200]}",
        inbound_message_id=message.id,
    )


def _everyday(
    *,
    session: Session,
    settings: Settings,
    programs: _Programs,
    message: ReceivedText,
    state: SenderState | None,
    intent: Intent,
    result: InboundResult,
    reply: Callable[..., None],
    program_of: Callable[[], Program | None],
) -> InboundResult:
    """A text that is no compliance keyword, crisis or request for a person: a join, CHECKIN,
    an answer, or anything else."""
    keyword = keyword_of(message.body)
    joined = next(
        (p for p in programs.all().values() if keyword in p.join_keywords), None
    ) if keyword else None
    if state is None:
        if joined is not None:
            return _join(session=session, settings=settings, program=joined, message=message)
        if replied_recently(
            session=session, phone=message.from_phone, intents=UNKNOWN_OR_OTHER,
            within=UNKNOWN_REPLY_INTERVAL, exclude=message.id,
        ):
            return result
        result.intent = "unknown"
        result.add(help_text(settings, None, programs.all()))
        return result

    participant = state.participant
    if joined is not None and joined.name == participant.program:
        reply("reply", f"You're already enrolled in {joined.title}. {STOP_LINE}")
        return result

    if intent is Intent.OPT_IN and participant.paused_at is not None:
        reply("reply", f"{PAUSED_LINE} {STOP_LINE}")
        return result

    if intent is Intent.CHECKIN:
        text, recorded = _checkin(session=session, participant=participant, program=program_of())
        if recorded:
            result.replies.append(text)
        else:
            reply("checkin", text)
        return result

    if answered := credit_answer(session=session, participant=participant, text=message,
                                 questions=state.questions, deciding=state.deciding):
        result.intent = "answer"
        if answered is not True:
            reply("reply", answered)
        else:  # unreadable after its clarifying question: kept as text, and a person sees it
            result.needs_person = "unreadable"
        return result

    result.intent = "other"
    if settings.inbox_any_text:
        result.needs_person = "unanswered"
    if state.conversation_id is not None:
        return result  # a person is answering them: no automated acknowledgement
    if not replied_recently(
        session=session, phone=message.from_phone, intents=UNKNOWN_OR_OTHER,
        within=UNKNOWN_REPLY_INTERVAL, exclude=message.id,
    ):
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
    *, session: Session, settings: Settings, program: Program, message: ReceivedText
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
        result = InboundResult(intent="join")
        result.add(f"You're already enrolled in {program.title}. {STOP_LINE}",
                   participant=found, program=program)
        return result
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
    result = InboundResult(intent="join")
    result.add(text, participant=participant, kind="welcome", program=program)
    return result
