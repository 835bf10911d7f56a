"""The phone: a web page to text the bot from, and the JSON it reads and writes."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template, request

from bot.sandbox.inbound import BotError, text_the_bot
from bot.sandbox.state import current_sandbox
from bot.sandbox.wire import MAX_BODY_CHARACTERS, e164

bp = Blueprint("sandbox_phone", __name__)

DEFAULT_PHONE = "+14155550123"


def _error(status: int, text: str, **extra: object) -> Response:
    response = jsonify({"error": text, **extra})
    response.status_code = status
    return response


@bp.get("/")
@bp.get("/phone")
def phone_page() -> str:
    """The phone page; `?number=` picks whose phone it is."""
    sandbox = current_sandbox()
    number = e164(request.args.get("number", "")) or DEFAULT_PHONE
    return render_template("phone.html", number=number, bot_number=sandbox.bot_number)


@bp.get("/sandbox/api/info")
def info() -> Response:
    """Which number the bot has and where its webhook is, for the page and for people."""
    sandbox = current_sandbox()
    return jsonify(
        {
            "account_sid": sandbox.account_sid,
            "bot_number": sandbox.bot_number,
            "bot_inbound_url": sandbox.bot_inbound_url,
            "public_url": sandbox.public_url or request.host_url.rstrip("/"),
        }
    )


@bp.post("/sandbox/api/inbound")
def inbound() -> Response:
    """Text the bot from a phone: {"from": "+14155550123", "body": "hello"}."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return _error(400, 'send JSON like {"from": "+14155550123", "body": "hello"}')
    raw_from, body = payload.get("from"), payload.get("body")
    phone = e164(raw_from) if isinstance(raw_from, str) else None
    if phone is None:
        return _error(400, f"from must be a phone number, not {raw_from!r}")
    if not isinstance(body, str) or not body.strip():
        return _error(400, "body must be some text")
    if len(body) > MAX_BODY_CHARACTERS:
        return _error(400, f"body must be at most {MAX_BODY_CHARACTERS} characters")
    try:
        exchange = text_the_bot(current_sandbox(), phone=phone, body=body)
    except BotError as exc:
        return _error(
            502, str(exc), code=exc.code, bot_status=exc.bot_status, inbound_sid=exc.inbound_sid
        )
    return jsonify(
        {
            "inbound_sid": exchange.inbound.sid,
            "replies": [reply.phone_view() for reply in exchange.replies],
        }
    )


@bp.get("/sandbox/api/conversations")
def conversations() -> Response:
    """Every phone number with messages, the most recently active first."""
    return jsonify(current_sandbox().store.phones())


@bp.get("/sandbox/api/conversations/<number>")
def conversation(number: str) -> Response:
    """One phone's messages, both directions, oldest first."""
    phone = e164(number)
    if phone is None:
        return _error(400, f"{number!r} is not a phone number")
    return jsonify([m.phone_view() for m in current_sandbox().store.conversation(phone)])
