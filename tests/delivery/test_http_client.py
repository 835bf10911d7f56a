"""The provider's HTTP client: keep-alive connections, the environment's proxy, dropped
connections replaced, all through the real twilio library."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

import pytest

from bot.delivery.http_client import form_encoded
from bot.delivery.provider import SendFailure, SmsSender
from bot.settings import Settings

ACCOUNT = "AC" + "0" * 32


class Provider(ThreadingHTTPServer):
    """A stand-in for Twilio's Messages API that counts connections and request lines."""

    daemon_threads = True

    def __init__(self, *, close_after_each: bool = False, chunked: bool = False,
                 says_close: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.connections = 0
        self.request_lines: list[str] = []
        self.headers_seen: list[dict[str, str]] = []
        self.bodies: list[bytes] = []
        self.close_after_each = close_after_each
        self.chunked = chunked  # answers in chunks, with no Content-Length
        self.says_close = says_close  # answers "Connection: close", then closes
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Twilio's API does
    server: Provider

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.request_lines.append(self.requestline)
        self.server.headers_seen.append(dict(self.headers.items()))
        number = len(self.server.request_lines)
        body = json.dumps({"sid": f"SM{number:032x}", "status": "queued"}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        if self.server.says_close:
            self.send_header("Connection", "close")
        if self.server.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 7):
                piece = body[start : start + 7]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.close_after_each:
            self.close_connection = True  # as a provider does when a connection sat idle

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[Provider]:
    with Provider() as server:
        yield server


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
    with Provider(close_after_each=True) as provider:
        client = sender(provider.url)
        client.send(to="+14155550142", body="first")
        time.sleep(0.2)  # the provider has closed the idle connection by now
        assert client.send(to="+14155550142", body="second").sid
        assert provider.connections == 2


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
    with Provider() as server:
        url = server.url  # nothing answers there once it is closed
    with pytest.raises(SendFailure) as failure:
        sender(url).send(to="+14155550142", body="hello")
    assert failure.value.ambiguous and failure.value.retryable


def test_a_chunked_answer_is_read_whole_and_the_connection_kept():
    with Provider(chunked=True) as provider:
        client = sender(provider.url)
        sids = [client.send(to="+14155550142", body=f"hello {i}").sid for i in range(3)]
        assert sids == [f"SM{n:032x}" for n in (1, 2, 3)]
        assert provider.connections == 1


def test_an_answer_that_says_close_gets_a_new_connection_for_the_next_send():
    with Provider(says_close=True) as provider:
        client = sender(provider.url)
        assert [client.send(to="+14155550142", body=f"hello {i}").sid for i in range(2)]
        assert provider.connections == 2


def test_the_request_carries_what_the_library_sends(provider):
    """Host, basic auth, the library's own headers, and the form as urlencode would write it."""
    sender(provider.url).send(to="+14155550142", body="Tea & 2+2 = 4? Çava 🙂")
    [headers] = provider.headers_seen
    assert headers["Host"] == provider.url.removeprefix("http://")
    assert headers["Authorization"] == "Basic " + base64.b64encode(
        f"{ACCOUNT}:secret".encode()).decode()
    assert headers["User-Agent"].startswith("twilio-python/")
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    [body] = provider.bodies
    assert parse_qs(body.decode()) == {
        "To": ["+14155550142"], "From": ["+15005550006"], "Body": ["Tea & 2+2 = 4? Çava 🙂"],
    }


def test_form_fields_are_encoded_as_urlencode_encodes_them():
    data = {"To": "+14155550142", "Body": "a b&c=d+é", "Tags": ["x y", "z"], "N": 3}
    assert form_encoded(data) == urlencode(data, doseq=True)


def test_an_authenticated_http_proxy_gets_the_credentials(provider, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", provider.url.replace("http://", "http://me:pa%20ss@"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert sender("http://api.twilio.example").send(to="+14155550142", body="hello").sid
    [headers] = provider.headers_seen
    assert headers["Proxy-Authorization"] == "Basic " + base64.b64encode(b"me:pa ss").decode()
    assert headers["Host"] == "api.twilio.example"
