"""The sandbox's phone page, driven in a real headless Chromium against a fake bot."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from werkzeug.serving import BaseWSGIServer, make_server

from bot.sandbox import create_sandbox_app, sandbox_of

ACCOUNT_SID = "AC" + "7b" * 16
AUTH_TOKEN = "phone-test-token"
BOT_NUMBER = "+15005550006"


class Server:
    """A WSGI app served over real HTTP on a free port, in a background thread."""

    def __init__(self, app: Any) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def echo_bot() -> Flask:
    """A bot that refuses unsigned texts and answers each one with what it heard."""
    app = Flask("echo_bot")
    validator = RequestValidator(AUTH_TOKEN)

    @app.post("/twilio/sms")
    def sms() -> Response:
        params = request.form.to_dict()
        if not validator.validate(request.url, params, request.headers.get("X-Twilio-Signature")):
            return Response("forged", status=403)
        twiml = MessagingResponse()
        twiml.message(f"You said: {params['Body']}")
        return Response(str(twiml), content_type="text/xml")

    return app


def closed_url(path: str) -> str:
    """A URL nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


@pytest.fixture(scope="module")
def bot_server() -> Iterator[Server]:
    server = Server(echo_bot())
    yield server
    server.stop()


def serve_sandbox_for(bot_inbound_url: str) -> Iterator[Server]:
    app = create_sandbox_app(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        bot_inbound_url=bot_inbound_url,
        bot_number=BOT_NUMBER,
        callback_delay=0.01,
    )
    server = Server(app)
    yield server
    server.stop()
    sandbox_of(app).close()


@pytest.fixture(scope="module")
def sandbox_server(bot_server: Server) -> Iterator[Server]:
    yield from serve_sandbox_for(f"{bot_server.url}/twilio/sms")


@pytest.fixture(scope="module")
def lonely_sandbox_server() -> Iterator[Server]:
    """A sandbox whose bot is not running."""
    yield from serve_sandbox_for(closed_url("/twilio/sms"))


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 420, "height": 760})
    page = context.new_page()
    yield page
    context.close()


def test_the_phone_page_loads_nothing_from_elsewhere(sandbox_server: Server) -> None:
    for path in ("/", "/phone"):
        response = requests.get(sandbox_server.url + path)
        assert response.status_code == 200
        assert "text/html" in response.headers["Content-Type"]
        assert BOT_NUMBER in response.text
        # Offline machines must get a working page: no scripts, styles or fonts from elsewhere.
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", response.text)
        assert '<label for="body"' in response.text and '<label for="number"' in response.text


@pytest.mark.browser
def test_a_text_typed_on_the_phone_gets_the_bots_reply(page: Any, sandbox_server: Server) -> None:
    from playwright.sync_api import expect

    page.goto(f"{sandbox_server.url}/phone?number=%2B14155550142")
    expect(page.get_by_label("Your phone number")).to_have_value("+14155550142")
    box = page.get_by_label("Message", exact=True)
    box.fill("I did the breathing exercise")
    box.press("Enter")

    thread = page.get_by_role("log", name="Messages with the bot")
    expect(thread.locator("li.mine .bubble")).to_have_text("You: I did the breathing exercise")
    reply = thread.locator("li.theirs")
    expect(reply.locator(".bubble")).to_have_text("Bot: You said: I did the breathing exercise")
    expect(reply.locator(".meta")).to_contain_text("Delivered")
    expect(box).to_have_value("")
    expect(page.get_by_role("alert")).to_be_hidden()

    box.fill("Second text")
    page.get_by_role("button", name="Send").click()
    expect(thread.locator("li.theirs")).to_have_count(2)
    page.screenshot(path="/tmp/sandbox-phone.png", full_page=True)


@pytest.mark.browser
def test_the_phone_shows_plainly_when_the_bot_is_unreachable(
    page: Any, lonely_sandbox_server: Server
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{lonely_sandbox_server.url}/phone")
    box = page.get_by_label("Message", exact=True)
    box.fill("hello?")
    box.press("Enter")

    expect(page.get_by_role("alert")).to_contain_text("unreachable")
    expect(page.locator("li.mine .meta")).to_contain_text("Not delivered to the bot (error 11200)")
    page.screenshot(path="/tmp/sandbox-phone-bot-down.png", full_page=True)
