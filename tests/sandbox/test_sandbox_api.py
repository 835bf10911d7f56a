"""The Twilio sandbox, driven over real HTTP by the real twilio library and a fake bot."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from flask import Flask, Response, request
from freezegun import freeze_time
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.serving import BaseWSGIServer, make_server

from bot import create_app
from bot.sandbox import create_sandbox_app, sandbox_of
from bot.settings import Settings
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL

ACCOUNT_SID = "AC" + "5a" * 16
AUTH_TOKEN = "sandbox-test-token"
BOT_NUMBER = "+15005550006"
# A participant texting from San Francisco, and a second one from New York.
PHONE = "+14155550123"
OTHER_PHONE = "+12125550188"
RFC_2822 = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000")
TWIML_HELLO = "<?xml version='1.0'?><Response><Message>Hi from the bot</Message></Response>"


class Server:
    """Serves whichever WSGI app is in `app` over real HTTP on a free port, in a thread.

    Tests swap in a fresh app rather than start a server each, which keeps the file fast.
    """

    def __init__(self, app: Any = None) -> None:
        self.app = app
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def closed_url(path: str) -> str:
    """A URL nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


@dataclass
class Hit:
    """One request the fake bot received."""

    path: str
    params: dict[str, str]
    signed: bool


@dataclass
class FakeBot:
    """A bot that checks Twilio's signature, records every request and answers canned TwiML."""

    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    status: int = 200
    answer: str = TWIML_HELLO
    content_type: str = "text/xml"

    @property
    def inbound_url(self) -> str:
        return f"{self.url}/twilio/sms"

    @property
    def status_url(self) -> str:
        return f"{self.url}/twilio/status"

    def callbacks(self, sid: str) -> list[Hit]:
        return [
            h
            for h in list(self.hits)
            if h.path == "/twilio/status" and h.params["MessageSid"] == sid
        ]

    def wait_for_callbacks(self, sid: str, count: int = 2) -> list[Hit]:
        return wait_until(lambda: len(hits := self.callbacks(sid)) == count and hits)

    def inbound(self) -> list[Hit]:
        return [h for h in list(self.hits) if h.path == "/twilio/sms"]

    def wsgi(self) -> Flask:
        app = Flask("fake_bot")
        validator = RequestValidator(AUTH_TOKEN)

        @app.post("/twilio/<kind>")
        def webhook(kind: str) -> Response:
            signature = request.headers.get("X-Twilio-Signature", "")
            params = request.form.to_dict()
            self.hits.append(
                Hit(request.path, params, validator.validate(request.url, params, signature))
            )
            if kind == "status":
                return Response(status=204)
            return Response(self.answer, status=self.status, content_type=self.content_type)

        return app


def wait_until(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll `check` until it returns something truthy, or fail after about `timeout` seconds."""
    for _ in range(int(timeout / 0.01)):  # counted, not timed: some tests freeze the clock
        if result := check():
            return result
        time.sleep(0.01)
    raise AssertionError(f"gave up waiting after {timeout} s")


@pytest.fixture(scope="module")
def bot_server() -> Iterator[Server]:
    server = Server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[Server]:
    server = Server()
    yield server
    server.stop()


@pytest.fixture
def fake_bot(bot_server: Server) -> FakeBot:
    bot = FakeBot(url=bot_server.url)
    bot_server.app = bot.wsgi()
    return bot


@pytest.fixture
def sandbox_app(fake_bot: FakeBot, sandbox_server: Server) -> Iterator[Flask]:
    """A fresh sandbox for each test, served by the module's server."""
    app = create_sandbox_app(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        bot_inbound_url=fake_bot.inbound_url,
        bot_number=BOT_NUMBER,
        callback_delay=0.01,
    )
    sandbox_server.app = app
    yield app
    sandbox_of(app).close()


@pytest.fixture
def sandbox_url(sandbox_app: Flask, sandbox_server: Server) -> str:
    return sandbox_server.url


@pytest.fixture
def twilio(sandbox_url: str) -> Client:
    """The real twilio client, pointed at the sandbox the way the bot points it."""
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = sandbox_url
    return client


def messages_url(sandbox_url: str) -> str:
    return f"{sandbox_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def raw_create(sandbox_url: str, **params: str) -> requests.Response:
    return requests.post(messages_url(sandbox_url), data=params, auth=(ACCOUNT_SID, AUTH_TOKEN))


def add_faults(sandbox_url: str, faults: list[dict[str, Any]], to: str | None = None) -> None:
    payload: dict[str, Any] = {"faults": faults}
    if to:
        payload["to"] = to
    response = requests.post(f"{sandbox_url}/sandbox/faults", json=payload)
    assert response.status_code == 201, response.text


# --- creating, fetching and listing through the real twilio library ---------------------------


def test_it_creates_a_message_the_twilio_library_can_read(twilio: Client) -> None:
    message = twilio.messages.create(to=PHONE, from_=BOT_NUMBER, body="Time for a 2-minute pause.")
    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.account_sid == ACCOUNT_SID
    assert (message.to, message.from_) == (PHONE, BOT_NUMBER)
    assert message.body == "Time for a 2-minute pause."
    assert message.status == "queued"
    assert message.direction == "outbound-api"
    assert message.num_segments == "1"
    assert message.api_version == "2010-04-01"
    assert message.price is None and message.error_code is None
    assert abs(message.date_created - datetime.now(UTC)) < timedelta(seconds=5)


def test_its_message_resource_has_twilios_wire_format(sandbox_url: str) -> None:
    response = raw_create(sandbox_url, To=PHONE, From=BOT_NUMBER, Body="hello")
    assert response.status_code == 201
    resource = response.json()
    assert set(resource) >= {
        "sid", "account_sid", "to", "from", "body", "status", "num_segments", "num_media",
        "direction", "date_created", "date_updated", "date_sent", "uri", "api_version",
        "price", "price_unit", "error_code", "error_message", "messaging_service_sid",
        "subresource_uris",
    }  # fmt: skip
    for key in ("date_created", "date_updated", "date_sent"):
        assert RFC_2822.fullmatch(resource[key]), resource[key]
    sid = resource["sid"]
    assert resource["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"
    assert resource["subresource_uris"]["media"].endswith(f"/Messages/{sid}/Media.json")
    assert (resource["price"], resource["error_code"], resource["error_message"]) == (None,) * 3


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("x" * 160, "1"),
        ("x" * 161, "2"),
        ("[" * 80, "1"),  # extended GSM characters cost two
        ("\u2019" * 70, "1"),  # a curly apostrophe forces UCS-2
        ("\u2019" * 71, "2"),
    ],
)
def test_it_counts_segments_as_a_carrier_does(sandbox_url: str, body: str, segments: str) -> None:
    resource = raw_create(sandbox_url, To=PHONE, From=BOT_NUMBER, Body=body).json()
    assert resource["num_segments"] == segments


def test_it_refuses_a_wrong_auth_token(sandbox_url: str) -> None:
    client = Client(ACCOUNT_SID, "not-the-token")
    client.api.base_url = sandbox_url
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=PHONE, from_=BOT_NUMBER, body="hi")
    assert (caught.value.status, caught.value.code) == (401, 20003)


def test_it_answers_not_found_for_another_accounts_messages(twilio: Client) -> None:
    other = twilio.api.v2010.accounts("AC" + "0" * 32)
    with pytest.raises(TwilioRestException) as caught:
        other.messages.create(to=PHONE, from_=BOT_NUMBER, body="hi")
    assert (caught.value.status, caught.value.code) == (404, 20404)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"From": BOT_NUMBER, "Body": "hi"}, 21604),
        ({"To": PHONE, "From": BOT_NUMBER}, 21602),
        ({"To": "12", "From": BOT_NUMBER, "Body": "hi"}, 21211),
        ({"To": PHONE, "Body": "hi"}, 21603),
        ({"To": PHONE, "From": "not a number!", "Body": "hi"}, 21212),
        ({"To": PHONE, "From": BOT_NUMBER, "Body": "x" * 1601}, 21617),
        ({"To": PHONE, "MessagingServiceSid": "MG123", "Body": "hi"}, 21701),
    ],
)
def test_it_refuses_bad_creates_with_twilios_error_json(
    sandbox_url: str, params: dict[str, str], code: int
) -> None:
    response = raw_create(sandbox_url, **params)
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == code
    assert error["status"] == 400
    assert error["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert error["message"]


@pytest.mark.parametrize(
    ("to", "code"),
    [("+15005550001", 21211), ("+15005550009", 21614), ("+15005550004", 21610)],
)
def test_the_twilio_library_raises_the_code_of_twilios_magic_numbers(
    twilio: Client, to: str, code: int
) -> None:
    with pytest.raises(TwilioRestException) as caught:
        twilio.messages.create(to=to, from_=BOT_NUMBER, body="hi")
    assert (caught.value.status, caught.value.code) == (400, code)


def test_it_sends_through_a_messaging_service(twilio: Client) -> None:
    service = "MG" + "1" * 32
    message = twilio.messages.create(to=PHONE, messaging_service_sid=service, body="hi")
    assert message.status == "accepted"
    assert message.messaging_service_sid == service
    assert message.from_ == BOT_NUMBER


def test_it_fetches_a_message_and_answers_404_for_an_unknown_one(twilio: Client) -> None:
    created = twilio.messages.create(to=PHONE, from_=BOT_NUMBER, body="fetch me")
    assert twilio.messages(created.sid).fetch().body == "fetch me"
    with pytest.raises(TwilioRestException) as caught:
        twilio.messages("SM" + "0" * 32).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)


def test_it_lists_messages_newest_first_with_twilios_filters(twilio: Client) -> None:
    for n in range(3):
        twilio.messages.create(to=PHONE, from_=BOT_NUMBER, body=f"to phone {n}")
    twilio.messages.create(to=OTHER_PHONE, from_=BOT_NUMBER, body="to the other phone")
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    tomorrow = datetime.now(UTC) + timedelta(days=1)

    mine = twilio.messages.list(to=PHONE, date_sent_after=an_hour_ago)
    assert [m.body for m in mine] == ["to phone 2", "to phone 1", "to phone 0"]
    assert [m.body for m in twilio.messages.list(to=OTHER_PHONE)] == ["to the other phone"]
    assert len(twilio.messages.list(from_=BOT_NUMBER)) == 4
    assert twilio.messages.list(date_sent_after=tomorrow) == []
    assert twilio.messages.list(date_sent_before=an_hour_ago) == []
    assert len(twilio.messages.list(date_sent=datetime.now(UTC).date().isoformat())) == 4


def test_it_pages_through_many_messages_as_twilio_does(twilio: Client, sandbox_url: str) -> None:
    sent = [
        twilio.messages.create(to=PHONE, from_=BOT_NUMBER, body=f"#{n}").sid for n in range(120)
    ]

    streamed = [m.sid for m in twilio.messages.stream(to=PHONE, page_size=50)]
    assert streamed == list(reversed(sent))

    first = requests.get(
        messages_url(sandbox_url),
        params={"To": PHONE, "PageSize": 50},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
    ).json()
    assert (first["page"], first["page_size"], first["start"], first["end"]) == (0, 50, 0, 49)
    assert first["previous_page_uri"] is None
    third = twilio.messages.page(to=PHONE, page_size=50).next_page().next_page()
    assert [m.body for m in third] == [f"#{n}" for n in range(19, -1, -1)]
    assert third.next_page_url is None


def test_paging_is_stable_while_new_messages_arrive(twilio: Client) -> None:
    for n in range(6):
        twilio.messages.create(to=PHONE, from_=BOT_NUMBER, body=f"#{n}")
    first = twilio.messages.page(page_size=3)
    twilio.messages.create(to=PHONE, from_=BOT_NUMBER, body="late")
    second = first.next_page()
    assert [m.body for m in second] == ["#2", "#1", "#0"]


def test_it_refuses_a_bad_list_filter(sandbox_url: str) -> None:
    response = requests.get(
        messages_url(sandbox_url), params={"DateSent>": "last week"}, auth=(ACCOUNT_SID, AUTH_TOKEN)
    )
    assert response.status_code == 400
    assert response.json()["code"] == 20001


# --- status callbacks --------------------------------------------------------------------------


def test_it_posts_signed_status_callbacks_sent_then_delivered(
    twilio: Client, fake_bot: FakeBot
) -> None:
    message = twilio.messages.create(
        to=PHONE, from_=BOT_NUMBER, body="hi", status_callback=fake_bot.status_url
    )
    hits = fake_bot.wait_for_callbacks(message.sid)
    assert [h.params["MessageStatus"] for h in hits] == ["sent", "delivered"]
    assert all(h.signed for h in hits)
    delivered = hits[1].params
    assert delivered["SmsStatus"] == "delivered"
    assert delivered["SmsSid"] == message.sid
    assert (delivered["To"], delivered["From"]) == (PHONE, BOT_NUMBER)
    assert delivered["AccountSid"] == ACCOUNT_SID
    assert delivered["ApiVersion"] == "2010-04-01"
    assert re.fullmatch(r"\d{10}", delivered["RawDlrDoneDate"])
    assert "ErrorCode" not in delivered
    assert twilio.messages(message.sid).fetch().status == "delivered"


def test_callbacks_keep_coming_while_a_test_freezes_the_clock(
    twilio: Client, fake_bot: FakeBot
) -> None:
    with freeze_time("2025-03-09 06:59:30"):
        message = twilio.messages.create(
            to=PHONE, from_=BOT_NUMBER, body="hi", status_callback=fake_bot.status_url
        )
        hits = fake_bot.wait_for_callbacks(message.sid)
    assert [h.params["MessageStatus"] for h in hits] == ["sent", "delivered"]
    assert hits[1].params["RawDlrDoneDate"] == "2503090659"
    assert message.date_created == datetime(2025, 3, 9, 6, 59, 30, tzinfo=UTC)


def test_messages_reach_delivered_even_without_a_callback_url(twilio: Client) -> None:
    message = twilio.messages.create(to=PHONE, from_=BOT_NUMBER, body="hi")
    wait_until(lambda: twilio.messages(message.sid).fetch().status == "delivered")


def test_it_keeps_working_when_the_callback_url_is_down(twilio: Client, sandbox_url: str) -> None:
    dead_url = closed_url("/twilio/status")
    message = twilio.messages.create(
        to=PHONE, from_=BOT_NUMBER, body="hi", status_callback=dead_url
    )
    wait_until(lambda: twilio.messages(message.sid).fetch().status == "delivered")
    expected = {"posted": 0, "failed": 2, "in_flight": 0}
    wait_until(lambda: requests.get(f"{sandbox_url}/sandbox/stats").json()["callbacks"] == expected)
    assert twilio.messages.create(to=PHONE, from_=BOT_NUMBER, body="still here").status == "queued"


# --- injected faults ---------------------------------------------------------------------------


def test_injected_errors_come_in_order_then_success_returns(
    twilio: Client, sandbox_url: str
) -> None:
    add_faults(
        sandbox_url,
        [{"status": 429, "code": 20429, "retry_after": 2}, {"status": 500, "code": 20500}],
    )
    raw = raw_create(sandbox_url, To=PHONE, From=BOT_NUMBER, Body="first try")
    assert raw.status_code == 429
    assert raw.headers["Retry-After"] == "2"
    assert raw.json()["code"] == 20429
    with pytest.raises(TwilioRestException) as caught:
        twilio.messages.create(to=PHONE, from_=BOT_NUMBER, body="second try")
    assert (caught.value.status, caught.value.code) == (500, 20500)
    assert twilio.messages.create(to=PHONE, from_=BOT_NUMBER, body="third try").status == "queued"
    assert [m.body for m in twilio.messages.list()] == ["third try"]


def test_a_fault_for_one_number_waits_for_that_number(twilio: Client, sandbox_url: str) -> None:
    add_faults(sandbox_url, [{"status": 400, "code": 21610}], to=OTHER_PHONE)
    assert twilio.messages.create(to=PHONE, from_=BOT_NUMBER, body="unaffected").sid
    with pytest.raises(TwilioRestException) as caught:
        twilio.messages.create(to=OTHER_PHONE, from_=BOT_NUMBER, body="opted out")
    assert caught.value.code == 21610
    assert twilio.messages.create(to=OTHER_PHONE, from_=BOT_NUMBER, body="again").sid


def test_clearing_faults_lets_creates_succeed_again(twilio: Client, sandbox_url: str) -> None:
    add_faults(sandbox_url, [{"status": 503}, {"status": 503}])
    assert len(requests.get(f"{sandbox_url}/sandbox/faults").json()["faults"]) == 2
    assert requests.delete(f"{sandbox_url}/sandbox/faults").json() == {"cleared": 2}
    assert twilio.messages.create(to=PHONE, from_=BOT_NUMBER, body="fine").status == "queued"


def test_a_delay_fault_makes_an_impatient_client_time_out(
    sandbox_url: str,
) -> None:
    impatient = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=TwilioHttpClient(timeout=0.2))
    impatient.api.base_url = sandbox_url
    add_faults(sandbox_url, [{"delay": 0.6}])
    with pytest.raises(requests.Timeout):
        impatient.messages.create(to=PHONE, from_=BOT_NUMBER, body="did it go?")
    # As on Twilio after a timeout, the create went ahead anyway: clients must reconcile.
    wait_until(lambda: [m.body for m in impatient.messages.list()] == ["did it go?"])


def test_an_injected_undelivered_fault_is_reported_by_the_status_callback(
    twilio: Client, sandbox_url: str, fake_bot: FakeBot
) -> None:
    add_faults(sandbox_url, [{"callback_status": "undelivered", "code": 30003}])
    message = twilio.messages.create(
        to=PHONE, from_=BOT_NUMBER, body="hi", status_callback=fake_bot.status_url
    )
    assert message.status == "queued"
    hits = fake_bot.wait_for_callbacks(message.sid)
    assert [h.params["MessageStatus"] for h in hits] == ["sent", "undelivered"]
    assert hits[1].params["ErrorCode"] == "30003"
    assert all(h.signed for h in hits)
    fetched = twilio.messages(message.sid).fetch()
    assert (fetched.status, fetched.error_code) == ("undelivered", 30003)
    assert fetched.error_message == "Unreachable destination handset"


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {"faults": "429"},
        {"faults": [{"status": 200}]},
        {"faults": [{"statuss": 500}]},
        {"faults": [{"delay": -1}]},
        {"faults": [{"callback_status": "lost"}]},
        {"faults": [{"status": 500}], "to": "nobody"},
    ],
)
def test_it_refuses_a_fault_it_cannot_act_on(sandbox_url: str, payload: Any) -> None:
    response = requests.post(f"{sandbox_url}/sandbox/faults", json=payload)
    assert response.status_code == 400
    assert response.json()["error"]


# --- texts from the phone to the bot ----------------------------------------------------------


def text_bot(sandbox_url: str, body: str, phone: str = PHONE) -> requests.Response:
    return requests.post(f"{sandbox_url}/sandbox/api/inbound", json={"from": phone, "body": body})


def test_a_text_from_the_phone_reaches_the_bot_signed_with_twilios_parameters(
    sandbox_url: str, fake_bot: FakeBot
) -> None:
    response = text_bot(sandbox_url, "hello")
    assert response.status_code == 200
    [hit] = fake_bot.inbound()
    assert hit.signed
    params = hit.params
    assert set(params) == {
        "ToCountry", "ToState", "SmsMessageSid", "NumMedia", "ToCity", "FromZip", "SmsSid",
        "FromState", "SmsStatus", "FromCity", "Body", "FromCountry", "To", "ToZip",
        "NumSegments", "MessageSid", "AccountSid", "From", "ApiVersion",
    }  # fmt: skip
    assert params["MessageSid"] == params["SmsSid"] == params["SmsMessageSid"]
    assert params["MessageSid"] == response.json()["inbound_sid"]
    assert (params["From"], params["To"], params["Body"]) == (PHONE, BOT_NUMBER, "hello")
    assert (params["SmsStatus"], params["NumMedia"], params["NumSegments"]) == (
        "received",
        "0",
        "1",
    )
    assert (params["FromCity"], params["FromState"], params["FromCountry"]) == (
        "SAN FRANCISCO",
        "CA",
        "US",
    )
    assert (params["AccountSid"], params["ApiVersion"]) == (ACCOUNT_SID, "2010-04-01")


def test_the_bots_twiml_replies_are_recorded_in_the_conversation(
    sandbox_url: str, fake_bot: FakeBot
) -> None:
    fake_bot.answer = (
        "<Response><Message>Thanks!</Message>"
        f"<Message statusCallback='{fake_bot.status_url}'><Body>Reply 1-5</Body></Message>"
        "</Response>"
    )
    answer = text_bot(sandbox_url, "done").json()
    assert [r["body"] for r in answer["replies"]] == ["Thanks!", "Reply 1-5"]
    assert {r["direction"] for r in answer["replies"]} == {"outbound-reply"}

    thread = requests.get(f"{sandbox_url}/sandbox/api/conversations/{PHONE}").json()
    assert [(m["direction"], m["body"]) for m in thread] == [
        ("inbound", "done"),
        ("outbound-reply", "Thanks!"),
        ("outbound-reply", "Reply 1-5"),
    ]
    assert (thread[1]["from"], thread[1]["to"]) == (BOT_NUMBER, PHONE)
    question = answer["replies"][1]["sid"]
    hits = fake_bot.wait_for_callbacks(question)
    assert [h.params["MessageStatus"] for h in hits] == ["sent", "delivered"]


def test_an_empty_twiml_response_records_no_reply(sandbox_url: str, fake_bot: FakeBot) -> None:
    fake_bot.answer = "<Response/>"
    assert text_bot(sandbox_url, "ok").json()["replies"] == []
    thread = requests.get(f"{sandbox_url}/sandbox/api/conversations/{PHONE}").json()
    assert [m["body"] for m in thread] == ["ok"]


def test_it_reports_an_unreachable_bot(sandbox_server: Server) -> None:
    app = create_sandbox_app(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        bot_inbound_url=closed_url("/twilio/sms"),
        bot_number=BOT_NUMBER,
    )
    sandbox_server.app = app
    try:
        response = text_bot(sandbox_server.url, "anyone there?")
        assert response.status_code == 502
        error = response.json()
        assert "unreachable" in error["error"]
        assert error["code"] == 11200
        thread = requests.get(f"{sandbox_server.url}/sandbox/api/conversations/{PHONE}").json()
        [inbound] = thread
        assert (inbound["sid"], inbound["error_code"]) == (error["inbound_sid"], 11200)
    finally:
        sandbox_of(app).close()


def test_it_reports_a_bot_that_answers_an_error_status(sandbox_url: str, fake_bot: FakeBot) -> None:
    fake_bot.status, fake_bot.answer = 403, "forbidden"
    response = text_bot(sandbox_url, "hello")
    assert response.status_code == 502
    assert response.json()["bot_status"] == 403
    assert "HTTP 403" in response.json()["error"]


def test_it_reports_an_answer_that_is_not_twiml(sandbox_url: str, fake_bot: FakeBot) -> None:
    fake_bot.answer = "<html>oops</html"
    response = text_bot(sandbox_url, "hello")
    assert response.status_code == 502
    assert response.json()["code"] == 12100


def test_a_plain_text_answer_is_sent_as_one_reply(sandbox_url: str, fake_bot: FakeBot) -> None:
    fake_bot.answer, fake_bot.content_type = "Got it.", "text/plain"
    assert [r["body"] for r in text_bot(sandbox_url, "hello").json()["replies"]] == ["Got it."]


@pytest.mark.parametrize(
    "payload",
    [{"from": "nope", "body": "hi"}, {"from": PHONE, "body": ""}, {"from": PHONE}, ["hi"]],
)
def test_it_refuses_an_inbound_text_it_cannot_send(sandbox_url: str, payload: Any) -> None:
    response = requests.post(f"{sandbox_url}/sandbox/api/inbound", json=payload)
    assert response.status_code == 400
    assert response.json()["error"]


def test_it_lists_the_numbers_it_has_seen_most_recent_first(
    sandbox_url: str, twilio: Client
) -> None:
    text_bot(sandbox_url, "hi", phone=PHONE)
    twilio.messages.create(to=OTHER_PHONE, from_=BOT_NUMBER, body="hello")
    numbers = requests.get(f"{sandbox_url}/sandbox/api/conversations").json()
    assert numbers == [OTHER_PHONE, PHONE]


def test_unknown_api_routes_answer_in_twilio_json(sandbox_url: str) -> None:
    response = requests.get(
        f"{sandbox_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json",
        auth=(ACCOUNT_SID, AUTH_TOKEN),
    )
    assert response.status_code == 404
    assert response.json()["code"] == 20404


# --- never part of a production deployment ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/sandbox/api/inbound"),
        ("GET", "/sandbox/api/conversations"),
        ("GET", f"/sandbox/api/conversations/{PHONE}"),
        ("GET", "/sandbox/api/info"),
        ("GET", "/phone"),
        ("POST", "/sandbox/faults"),
        ("POST", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"),
    ],
)
def test_the_production_app_has_no_sandbox_routes(method: str, path: str) -> None:
    settings = Settings(
        env="production",
        secret_key="a-long-random-production-secret",
        twilio_account_sid="AC" + "1" * 32,
        twilio_auth_token="a-real-auth-token",
        database_url=TEST_DATABASE_URL,
        redis_url=TEST_REDIS_URL,
        public_base_url="https://tend.example.org",
    ).validated()
    client = create_app(settings).test_client()
    response = client.open(path, method=method, json={"from": PHONE, "body": "JOIN"})
    assert response.status_code == 404
