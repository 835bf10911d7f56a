"""The webhooks: signatures, idempotency, malformed bodies, fast TwiML replies."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlmodel import Session, func, select

from bot.store.models import Delivery, InboundMessage, Participant
from tests.conftest import inbound_params, sign

# A parent who hears about the program from a flyer and texts the keyword.
PARENT = "+14155550123"


def count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def test_a_keyword_text_enrolls_and_the_welcome_says_how_to_stop(text_bot, session):
    response = text_bot(PARENT, "join")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    [welcome] = response.replies
    assert "Daily Check-in" in welcome
    assert "up to 2 texts a day" in welcome
    assert "STOP" in welcome
    participant = session.exec(select(Participant)).one()
    assert participant.phone == PARENT
    assert participant.program == "daily-checkin"
    assert count(session, Delivery) == 1 + 14  # the welcome, and a week of two daily events


def test_it_refuses_an_unsigned_request_and_changes_nothing(client, session):
    response = client.post("/twilio/sms", data=inbound_params(PARENT, "JOIN"))
    assert response.status_code == 403
    assert count(session, InboundMessage) == 0
    assert count(session, Participant) == 0


def test_it_refuses_a_forged_signature_and_changes_nothing(twilio_post, session, settings):
    params = inbound_params(PARENT, "JOIN")
    forged = sign(settings.with_overrides(twilio_auth_token="guessed-token"), "/twilio/sms", params)
    response = twilio_post("/twilio/sms", params, signature=forged)
    assert response.status_code == 403
    assert count(session, InboundMessage) == 0


def test_a_signature_for_altered_parameters_is_refused(client, settings, session):
    params = inbound_params(PARENT, "JOIN")
    signature = sign(settings, "/twilio/sms", params)
    tampered = {**params, "Body": "STOP"}
    response = client.post(
        "/twilio/sms", data=tampered, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403
    assert count(session, InboundMessage) == 0


def test_the_signature_is_checked_against_the_public_url_behind_a_proxy(client, settings):
    # The proxy hands us http://localhost/...; Twilio signed https://tend.example.org/...
    params = inbound_params(PARENT, "HELP")
    response = client.post(
        "/twilio/sms",
        data=params,
        headers={"X-Twilio-Signature": sign(settings, "/twilio/sms", params)},
        base_url="http://internal-host:8000",
    )
    assert response.status_code == 200


def test_a_genuine_text_costs_one_signature(twilio_post, settings, validations):
    assert twilio_post("/twilio/sms", inbound_params(PARENT, "HELP")).status_code == 200
    assert validations == [settings.public_base_url + "/twilio/sms"]


def test_a_signature_over_the_url_with_its_default_port_is_accepted(client, settings):
    # Twilio's back end sometimes signs https://host:443/...: the library accepts both forms.
    params = inbound_params(PARENT, "HELP")
    with_port = settings.with_overrides(public_base_url="https://tend.example.org:443")
    response = client.post(
        "/twilio/sms", data=params,
        headers={"X-Twilio-Signature": sign(with_port, "/twilio/sms", params)},
    )
    assert response.status_code == 200


def test_a_signature_header_that_is_not_base64_is_refused_not_an_error(client, session):
    response = client.post(
        "/twilio/sms", data=inbound_params(PARENT, "JOIN"),
        headers={"X-Twilio-Signature": "é" * 28},
    )
    assert response.status_code == 403
    assert count(session, InboundMessage) == 0


def test_a_retried_webhook_is_processed_once(text_bot, session):
    first = text_bot(PARENT, "JOIN", sid="SM" + "a" * 32)
    retry = text_bot(PARENT, "JOIN", sid="SM" + "a" * 32)
    assert first.replies and retry.status_code == 200
    assert retry.replies == []
    assert count(session, InboundMessage) == 1
    assert count(session, Participant) == 1


def test_a_malformed_body_gets_a_clear_error_and_stores_nothing(twilio_post, session):
    params = {"Body": "hello", "From": PARENT}  # no MessageSid
    response = twilio_post("/twilio/sms", params)
    assert response.status_code == 400
    assert b"MessageSid" in response.data
    garbled = {**inbound_params("not-a-number", "hi")}
    response = twilio_post("/twilio/sms", garbled)
    assert response.status_code == 400
    assert b"From is not a phone number" in response.data
    assert count(session, InboundMessage) == 0


# --- request size -------------------------------------------------------------------------------

ONE_MEGABYTE = 1024 * 1024


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URLs the webhooks computed a signature for, in the library's check or before it."""
    from twilio.request_validator import RequestValidator

    from bot.web import webhooks

    checked: list[str] = []

    class Recording(RequestValidator):
        def compute_signature(self, uri: str, *args: Any, **kwargs: Any) -> str:
            checked.append(uri)
            return super().compute_signature(uri, *args, **kwargs)

    monkeypatch.setattr(webhooks, "RequestValidator", Recording)
    return checked


@pytest.mark.parametrize("path", ["/twilio/sms", "/twilio/status"])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_a_body_over_the_limit_is_refused_before_it_is_parsed(
    client, settings, session, validations, monkeypatch, path: str, signed: bool
):
    from flask import Request

    parsed: list[str] = []
    load_form = Request._load_form_data
    monkeypatch.setattr(
        Request, "_load_form_data", lambda self: parsed.append(self.path) or load_form(self)
    )
    params = {**inbound_params(PARENT, "JOIN"), "Padding": "x" * ONE_MEGABYTE}
    headers = {"X-Twilio-Signature": sign(settings, path, params)} if signed else {}

    response = client.post(path, data=params, headers=headers)

    assert response.status_code == 413
    assert parsed == [] and validations == []
    assert count(session, InboundMessage) == 0
    assert count(session, Participant) == 0


def chunked(client, settings, path: str, params: dict[str, str]) -> Any:
    """POST `params` signed, as a body without a Content-Length (chunked), as gunicorn passes it."""
    return client.post(
        path,
        input_stream=io.BytesIO(urlencode(params).encode()),
        content_type="application/x-www-form-urlencoded",
        headers={
            "X-Twilio-Signature": sign(settings, path, params),
            "Transfer-Encoding": "chunked",
        },
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_body_without_a_length_is_refused_at_the_limit(client, settings, session, validations):
    params = {**inbound_params(PARENT, "JOIN"), "Padding": "x" * ONE_MEGABYTE}
    response = chunked(client, settings, "/twilio/sms", params)
    assert response.status_code == 413
    assert validations == []
    assert count(session, InboundMessage) == 0


def test_a_small_body_without_a_length_is_handled(client, settings, session):
    response = chunked(client, settings, "/twilio/sms", inbound_params(PARENT, "JOIN"))
    assert response.status_code == 200
    assert b"Daily Check-in" in response.data
    assert count(session, InboundMessage) == 1


def test_the_longest_text_twilio_delivers_is_well_within_the_limit(text_bot, session):
    response = text_bot(PARENT, "JOIN " + "é" * 1595)  # 1,600 characters, in UCS-2
    assert response.status_code == 200
    assert count(session, InboundMessage) == 1


def test_a_signed_status_callback_is_still_accepted(twilio_post):
    params = {"MessageSid": "SM" + "b" * 32, "MessageStatus": "delivered", "AccountSid": "AC"}
    assert twilio_post("/twilio/status", params).status_code == 204


def test_a_coordinator_s_program_edit_is_served_a_second_later(app, text_bot, settings, tmp_path):
    import shutil
    from datetime import timedelta

    from freezegun import freeze_time

    narratives = tmp_path / "narratives"
    shutil.copytree(settings.narratives_dir, narratives)
    app.config["TEND"] = settings.with_overrides(narratives_dir=narratives)
    definition = narratives / "daily-checkin" / "program.yaml"
    with freeze_time("2026-05-04 14:00:00") as clock:
        text_bot(PARENT, "JOIN")
        edited = definition.read_text().replace("title: Daily Check-in", "title: Evening Check-in")
        definition.write_text(edited)
        clock.tick(timedelta(seconds=1))
        [answer] = text_bot(PARENT, "HELP").replies
    assert answer.startswith("Evening Check-in:")
