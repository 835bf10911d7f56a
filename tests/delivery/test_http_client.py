"""The provider's HTTP client: keep-alive connections, the environment's proxy, dropped
connections replaced, all through the real twilio library."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.delivery.provider import SendFailure, SmsSender
from bot.settings import Settings

ACCOUNT = "AC" + "0" * 32


class Provider(ThreadingHTTPServer):
    """A stand-in for Twilio's Messages API that counts connections and request lines."""

    daemon_threads = True

    def __init__(self, *, close_after_each: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.connections = 0
        self.request_lines: list[str] = []
        self.close_after_each = close_after_each
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Twilio's API does
    server: Provider

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.request_lines.append(self.requestline)
        number = len(self.server.request_lines)
        body = json.dumps({"sid": f"SM{number:032x}", "status": "queued"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.close_after_each:
            self.close_connection = True  # as a provider does when a connection sat idle

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = Provider()
    yield server
    server.shutdown()
    server.server_close()


def sender(base_url: str) -> SmsSender:
    return SmsSender(Settings(
        twilio_account_sid=ACCOUNT, twilio_auth_token="secret", twilio_api_base_url=base_url,
        twilio_from_number="+15005550006",
    ))


def test_consecutive_sends_share_one_kept_alive_connection(provider):
    client = sender(provider.url)
    sids = [client.send(to="+14155550142", body=f"hello {i}").sid for i in range(3)]
    assert len(set(sids)) == 3
    assert provider.connections == 1


def test_a_connection_the_provider_closed_while_idle_is_replaced_not_failed():
    provider = Provider(close_after_each=True)
    try:
        client = sender(provider.url)
        client.send(to="+14155550142", body="first")
        time.sleep(0.2)  # the provider has closed the idle connection by now
        assert client.send(to="+14155550142", body="second").sid
        assert provider.connections == 2
    finally:
        provider.shutdown()
        provider.server_close()


def test_sends_go_through_the_proxy_the_environment_names(provider, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", provider.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = sender("http://api.twilio.example")  # reachable only through the proxy
    assert client.send(to="+14155550142", body="hello").sid
    [line] = provider.request_lines
    assert line.startswith(
        f"POST http://api.twilio.example/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    )


def test_a_provider_that_cannot_be_reached_is_an_ambiguous_failure_to_reconcile():
    server = Provider()
    url = server.url
    server.shutdown()
    server.server_close()
    with pytest.raises(SendFailure) as failure:
        sender(url).send(to="+14155550142", body="hello")
    assert failure.value.ambiguous and failure.value.retryable
