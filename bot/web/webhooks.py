"""Twilio webhooks: every request's signature is checked against the public URL first."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any
from urllib.parse import urlparse

from flask import Blueprint, Response, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from werkzeug.datastructures import MultiDict

from bot import web
from bot.conversation.inbound import InboundError, handle_inbound
from bot.delivery.status import record_status
from bot.participants.phones import mask
from bot.store.db import session_scope

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/twilio")


@bp.before_request
def refuse_large_bodies() -> None:
    """413 for a body over MAX_CONTENT_LENGTH, before it is parsed or its signature checked."""
    limit = request.max_content_length
    if limit is None:
        return
    if request.content_length is not None:
        too_large = request.content_length > limit
    else:
        # Sent without a length (chunked): read no further than the limit, kept for parsing.
        too_large = len(request.get_data(cache=True)) >= limit
    if too_large:
        log.warning("refused %s: body over %d bytes", request.path, limit)
        abort(413)


def public_url() -> str:
    """The URL Twilio signed: the configured public base, not what a proxy handed us."""
    path = request.full_path
    if path.endswith("?"):
        path = path[:-1]
    return web.settings().public_base_url + path


class _SignedForm:
    """The form as the validator reads it: it asks for each parameter's values with getall(),
    which werkzeug's MultiDict calls getlist(); offered directly, no lookup fails first."""

    def __init__(self, form: MultiDict[str, str]) -> None:
        self._form = form

    def __iter__(self) -> Iterator[str]:
        return iter(self._form)

    def __len__(self) -> int:
        return len(self._form)

    def getall(self, name: str) -> list[str]:
        return self._form.getlist(name)


def _verifies(validator: RequestValidator, url: str, form: _SignedForm, signature: str) -> bool:
    """The library's check (`validate`), which signs the URL both with and without its port
    and accepts either: the URL as configured is one of the two, and is what Twilio signs, so
    it is tried alone first and a genuine request costs one signature, not two."""
    expected = validator.compute_signature(urlparse(url).geturl(), form)
    if hmac.compare_digest(expected.encode(), signature.encode()):
        return True
    return bool(validator.validate(url, form, signature))


def signed(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse (403, nothing changed) any request whose X-Twilio-Signature does not verify."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        signature = request.headers.get("X-Twilio-Signature", "")
        validator = RequestValidator(web.settings().twilio_auth_token)
        form = _SignedForm(request.form)
        if not signature or not _verifies(validator, public_url(), form, signature):
            log.warning(
                "refused %s: %s signature", request.path, "bad" if signature else "missing"
            )
            abort(403)
        return view(*args, **kwargs)

    return checked


def twiml(messages: list[str]) -> Response:
    response = MessagingResponse()
    for text in messages:
        response.message(text)
    return Response(str(response), mimetype="application/xml")


@bp.post("/sms")
@signed
def inbound_sms() -> Response:
    form = request.form.to_dict()
    try:
        with session_scope(web.engine()) as session:
            result = handle_inbound(
                session=session, settings=web.settings(), programs=web.programs, form=form
            )
    except InboundError as exc:
        log.warning("refused inbound from %s: %s", mask(form.get("From")), exc)
        return Response(f"{exc}\n", status=400, mimetype="text/plain")
    return twiml(result.replies)


@bp.post("/status")
@signed
def status_callback() -> Response:
    sid = request.form.get("MessageSid", "")
    status = request.form.get("MessageStatus", "")
    if not sid or not status:
        return Response("status callback needs MessageSid and MessageStatus\n", status=400)
    raw_code = request.form.get("ErrorCode") or ""
    try:
        error_code = int(raw_code) if raw_code else None
    except ValueError:
        return Response(f"ErrorCode must be a number, not {raw_code!r}\n", status=400)
    with session_scope(web.engine()) as session:
        outcome = record_status(
            session=session,
            message_sid=sid,
            provider_status=status,
            error_code=error_code,
            max_attempts=web.settings().max_send_attempts,
        )
    log.info("status %s for %s: %s", status, sid, outcome)
    return Response(status=204)
