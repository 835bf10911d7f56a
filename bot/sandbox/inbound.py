"""A text from the phone to the bot: Twilio's signed webhook, then the bot's TwiML answer."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from functools import lru_cache
from typing import NoReturn

import phonenumbers
from phonenumbers import geocoder

from bot.clock import now
from bot.participants.phones import mask
from bot.sandbox.callbacks import Step
from bot.sandbox.state import Sandbox
from bot.sandbox.store import INBOUND, OUTBOUND_REPLY, Message
from bot.sandbox.webhooks import WebhookError, post_signed
from bot.sandbox.wire import API_VERSION, count_segments, e164, new_sid

log = logging.getLogger(__name__)

HTTP_RETRIEVAL_FAILURE = 11200
DOCUMENT_PARSE_FAILURE = 12100


class BotError(Exception):
    """The bot could not be reached, or answered with something Twilio would not accept."""

    def __init__(
        self, text: str, *, inbound_sid: str, code: int, bot_status: int | None = None
    ) -> None:
        super().__init__(text)
        self.inbound_sid = inbound_sid
        self.code = code
        self.bot_status = bot_status


@dataclass(frozen=True)
class Reply:
    """One <Message> of a TwiML answer."""

    body: str
    to: str | None = None
    from_: str | None = None
    status_callback: str | None = None


@dataclass(frozen=True)
class Exchange:
    """What one text from the phone led to: the recorded inbound message and the bot's replies."""

    inbound: Message
    replies: list[Message]


@lru_cache(maxsize=1024)
def place(number: str) -> tuple[str, str, str]:
    """(country, state, city) of a number, as Twilio fills FromCountry/FromState/FromCity."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return "", "", ""
    country = phonenumbers.region_code_for_number(parsed) or (
        phonenumbers.region_code_for_country_code(parsed.country_code)
    )
    description = geocoder.description_for_number(parsed, "en")
    city, _, state = description.rpartition(", ")
    if not city:  # a bare region ("California") names no city and no state code
        return country, "", ""
    return country, state.upper(), city.upper()


def inbound_params(sandbox: Sandbox, *, sid: str, phone: str, body: str) -> dict[str, str]:
    """Every parameter Twilio posts to a messaging webhook for an incoming SMS."""
    to_country, to_state, to_city = place(sandbox.bot_number)
    from_country, from_state, from_city = place(phone)
    return {
        "ToCountry": to_country,
        "ToState": to_state,
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": to_city,
        "FromZip": "",
        "SmsSid": sid,
        "FromState": from_state,
        "SmsStatus": "received",
        "FromCity": from_city,
        "Body": body,
        "FromCountry": from_country,
        "To": sandbox.bot_number,
        "ToZip": "",
        "NumSegments": str(count_segments(body)),
        "MessageSid": sid,
        "AccountSid": sandbox.account_sid,
        "From": phone,
        "ApiVersion": API_VERSION,
    }


def parse_twiml(text: str, content_type: str = "text/xml") -> list[Reply]:
    """The <Message>s of a TwiML answer; ValueError if it is not TwiML Twilio would accept."""
    if not text.strip():
        return []  # an empty 200 simply sends no reply
    if content_type.split(";")[0].strip().lower() == "text/plain":
        return [Reply(text.strip())]  # Twilio sends a plain-text answer as one message
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise ValueError(f"the answer is not well-formed XML ({exc})") from None
    if root.tag != "Response":
        raise ValueError(f"the answer's root element is <{root.tag}>, not <Response>")
    replies = []
    for verb in root:
        if verb.tag != "Message":
            log.info("sandbox: TwiML <%s> is not simulated and was ignored", verb.tag)
            continue
        parts = [verb.text or ""]
        for child in verb:
            if child.tag == "Body":
                parts.append(child.text or "")
            parts.append(child.tail or "")
        body = "".join(parts).strip()
        if body:
            replies.append(
                Reply(
                    body=body,
                    to=verb.get("to"),
                    from_=verb.get("from"),
                    status_callback=verb.get("statusCallback") or verb.get("action"),
                )
            )
    return replies


def text_the_bot(sandbox: Sandbox, *, phone: str, body: str) -> Exchange:
    """Deliver a text from `phone` to the bot and record what it answers; BotError if it fails."""
    sid = new_sid()
    moment = now()
    inbound = sandbox.store.add(
        Message(
            sid=sid,
            account_sid=sandbox.account_sid,
            to=sandbox.bot_number,
            from_=phone,
            body=body,
            direction=INBOUND,
            status="received",
            num_segments=count_segments(body),
            date_created=moment,
            date_updated=moment,
            date_sent=moment,
        )
    )
    params = inbound_params(sandbox, sid=sid, phone=phone, body=body)
    url = sandbox.bot_inbound_url
    try:
        response = post_signed(url, params, auth_token=sandbox.auth_token)
    except WebhookError as exc:
        _fail(sandbox, sid, HTTP_RETRIEVAL_FAILURE, f"The bot at {url} is unreachable ({exc}).")
    if not 200 <= response.status < 300:
        _fail(
            sandbox,
            sid,
            HTTP_RETRIEVAL_FAILURE,
            f"The bot at {url} answered HTTP {response.status}.",
            bot_status=response.status,
        )
    try:
        replies = parse_twiml(response.text, response.content_type or "text/xml")
    except ValueError as exc:
        _fail(
            sandbox,
            sid,
            DOCUMENT_PARSE_FAILURE,
            f"The bot's answer is not valid TwiML: {exc}.",
            bot_status=response.status,
        )
    log.info("sandbox: %s texted the bot, %d replies", mask(phone), len(replies))
    return Exchange(inbound=inbound, replies=[_record(sandbox, phone, r) for r in replies])


def _record(sandbox: Sandbox, phone: str, reply: Reply) -> Message:
    moment = now()
    to = (e164(reply.to) or reply.to) if reply.to else phone
    message = sandbox.store.add(
        Message(
            sid=new_sid(),
            account_sid=sandbox.account_sid,
            to=to,
            from_=reply.from_ or sandbox.bot_number,
            body=reply.body,
            direction=OUTBOUND_REPLY,
            status="queued",
            num_segments=count_segments(reply.body),
            date_created=moment,
            date_updated=moment,
            date_sent=moment,
            status_callback=reply.status_callback,
        )
    )
    sandbox.callbacks.schedule(message.sid, [Step("sent"), Step("delivered")])
    return message


def _fail(
    sandbox: Sandbox, sid: str, code: int, text: str, *, bot_status: int | None = None
) -> NoReturn:
    # Twilio notes a failed webhook on the message (11200, 12100) and tells no one else.
    sandbox.store.record_error(sid, code, text)
    log.warning("sandbox: %s", text)
    raise BotError(text, inbound_sid=sid, code=code, bot_status=bot_status)
