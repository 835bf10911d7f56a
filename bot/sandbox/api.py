"""The Twilio REST API subset the twilio library uses for messages: create, fetch and list."""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request
from werkzeug.datastructures import MultiDict

from bot.clock import now
from bot.sandbox.callbacks import Step
from bot.sandbox.faults import Fault
from bot.sandbox.filters import LIST_FILTERS, bounded_int, message_filter
from bot.sandbox.state import current_sandbox
from bot.sandbox.store import OUTBOUND_API, Message
from bot.sandbox.wire import (
    API_VERSION,
    MAGIC_FROM_ERRORS,
    MAGIC_TO_ERRORS,
    MAX_BODY_CHARACTERS,
    count_segments,
    e164,
    error_response,
    is_messaging_service_sid,
    new_sid,
)

bp = Blueprint("sandbox_api", __name__, url_prefix=f"/{API_VERSION}/Accounts/<account_sid>")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_ALPHANUMERIC_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")


@bp.before_request
def authenticate() -> Response | None:
    """Refuse wrong credentials (401, 20003) and other accounts' paths (404, 20404)."""
    sandbox = current_sandbox()
    auth = request.authorization
    valid = (
        auth is not None
        and auth.type == "basic"
        and hmac.compare_digest(auth.username or "", sandbox.account_sid)
        and hmac.compare_digest(auth.password or "", sandbox.auth_token)
    )
    if not valid:
        return error_response(
            401,
            20003,
            "Authenticate",
            headers={"WWW-Authenticate": 'Basic realm="Twilio API"'},
        )
    if (request.view_args or {}).get("account_sid") != sandbox.account_sid:
        return not_found()
    return None


def not_found() -> Response:
    return error_response(404, 20404, f"The requested resource {request.path} was not found")


@dataclass(frozen=True)
class _Outgoing:
    """A create request that passed Twilio's checks."""

    to: str
    sender: str
    body: str
    service_sid: str | None
    callback: str | None


def _read_create(form: MultiDict[str, str], bot_number: str) -> _Outgoing | Response:
    """The create's parameters, or the error Twilio would answer them with."""
    to_raw = form.get("To", "").strip()
    from_raw = form.get("From", "").strip()
    service_sid = form.get("MessagingServiceSid", "").strip()
    body = form.get("Body", "")
    callback = form.get("StatusCallback", "").strip() or None
    if not to_raw:
        return error_response(400, 21604, "A 'To' phone number is required.")
    if not from_raw and not service_sid:
        return error_response(400, 21603, "A 'From' phone number is required.")
    if not body and not form.getlist("MediaUrl") and not form.get("ContentSid"):
        return error_response(400, 21602, "Message body is required.")
    if len(body) > MAX_BODY_CHARACTERS:
        return error_response(
            400, 21617, "The concatenated message body exceeds the 1600 character limit."
        )
    to = e164(to_raw)
    if to is None:
        return error_response(400, 21211, f"The 'To' number {to_raw} is not a valid phone number.")
    if to in MAGIC_TO_ERRORS:
        return error_response(400, *MAGIC_TO_ERRORS[to])
    if service_sid and not is_messaging_service_sid(service_sid):
        return error_response(400, 21701, f"The Messaging Service Sid {service_sid} is invalid.")
    sender = bot_number  # a Messaging Service sends from the sandbox's one number
    if from_raw:
        number = e164(from_raw)
        if number is None and not _ALPHANUMERIC_SENDER.fullmatch(from_raw):
            return error_response(
                400,
                21212,
                f"The 'From' number {from_raw} is not a valid phone number, "
                "shortcode, or alphanumeric sender ID.",
            )
        sender = number or from_raw
        if sender in MAGIC_FROM_ERRORS:
            return error_response(400, *MAGIC_FROM_ERRORS[sender])
    if callback is not None and not callback.startswith(("http://", "https://")):
        return error_response(400, 21609, f"The StatusCallback URL {callback} is not valid.")
    return _Outgoing(to, sender, body, service_sid or None, callback)


@bp.post("/Messages.json")
def create_message(account_sid: str) -> Response:
    """Accept a message for sending, as `client.messages.create(...)` asks."""
    sandbox = current_sandbox()
    outgoing = _read_create(request.form, sandbox.bot_number)
    if isinstance(outgoing, Response):
        return outgoing

    fault = sandbox.faults.take(outgoing.to)
    if fault is not None:
        # A hang alone still ends in a created message, as on Twilio when a client gives up.
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else None
            return error_response(fault.status, fault.code or 0, fault.message or "", headers)

    moment = now()
    message = sandbox.store.add(
        Message(
            sid=new_sid(),
            account_sid=account_sid,
            to=outgoing.to,
            from_=outgoing.sender,
            body=outgoing.body,
            direction=OUTBOUND_API,
            status="accepted" if outgoing.service_sid else "queued",
            num_segments=count_segments(outgoing.body),
            date_created=moment,
            date_updated=moment,
            date_sent=moment,
            messaging_service_sid=outgoing.service_sid,
            status_callback=outgoing.callback,
        )
    )
    sandbox.callbacks.schedule(message.sid, delivery_steps(fault))
    response = jsonify(message.resource())
    response.status_code = 201
    return response


def delivery_steps(fault: Fault | None) -> list[Step]:
    """The statuses an accepted message goes through: sent, then delivered unless a fault says."""
    if fault is not None and fault.callback_status is not None:
        final = Step(fault.callback_status, fault.code, fault.message)
    else:
        final = Step("delivered")
    return [Step("sent"), final]


@bp.get("/Messages/<sid>.json")
def fetch_message(account_sid: str, sid: str) -> Response:
    """One message, as `client.messages(sid).fetch()` asks."""
    message = current_sandbox().store.get(sid)
    if message is None or message.account_sid != account_sid:
        return not_found()
    return jsonify(message.resource())


@bp.get("/Messages.json")
def list_messages(account_sid: str) -> Response:
    """A page of messages, newest first, as `client.messages.list/stream/page` ask."""
    args = request.args
    try:
        keep = message_filter(account_sid, args)
        page_size = bounded_int(args, "PageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        page = bounded_int(args, "Page", 0, 0, 10**9)
    except ValueError as exc:
        return error_response(400, 20001, str(exc))
    matches = current_sandbox().store.newest_first(keep)

    # Page tokens name the last (PA) or first (PB) message of the page next to the one wanted,
    # so paging stays stable while new messages arrive, as Twilio's tokens do.
    token = args.get("PageToken", "")
    start = page * page_size
    if token[:2] in ("PA", "PB"):
        index = next((i for i, m in enumerate(matches) if m.sid == token[2:]), None)
        if index is None:
            return error_response(400, 20001, f"Invalid PageToken {token}")
        start = index + 1 if token.startswith("PA") else max(0, index - page_size)
    elif token:
        return error_response(400, 20001, f"Invalid PageToken {token}")
    items = matches[start : start + page_size]

    base = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"
    filters = [(name, args[name]) for name in LIST_FILTERS if name in args]

    def page_uri(number: int, page_token: str | None = None) -> str:
        query = [*filters, ("PageSize", str(page_size)), ("Page", str(number))]
        if page_token:
            query.append(("PageToken", page_token))
        return f"{base}?{urlencode(query)}"

    has_next = start + page_size < len(matches)
    return jsonify(
        {
            "messages": [m.resource() for m in items],
            "end": page * page_size + max(len(items) - 1, 0),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1, "PA" + items[-1].sid) if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": (
                page_uri(page - 1, "PB" + items[0].sid) if page > 0 and items else None
            ),
            "start": page * page_size,
            "uri": page_uri(page, token or None),
        }
    )
