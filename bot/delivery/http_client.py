"""The twilio library's HTTP client, on a pool of keep-alive connections shared by a worker's
sending threads.

The library's own client goes through requests, which reads the proxy and certificate settings
from the environment again on every request and builds a prepared request, a session merge and
a urllib3 retry plan each time: most of a send's CPU. Here the environment is read once, when
the client is made, with the same rules (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE,
CURL_CA_BUNDLE, certifi's bundle). The standard library's http.client opens each connection
(TLS, a proxy's CONNECT tunnel); each request is then one HTTP/1.1 exchange written and read
here on that socket: http.client parses every response's headers with the email package, the
largest part of a send's HTTP cost in a profile of the send path.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import select
import socket
import ssl
import threading
from functools import lru_cache
from urllib.parse import quote_plus, unquote, urlencode, urlsplit

from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_environ_proxies, select_proxy
from twilio.http import HttpClient
from twilio.http.response import Response


def _ca_bundle() -> str:
    """The certificates requests would verify with."""
    return (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        or DEFAULT_CA_BUNDLE_PATH
    )


MAX_LINE = 65536  # the longest status or header line read, as http.client allows
MAX_HEADERS = 100


def _dropped(sock: socket.socket) -> bool:
    """Whether an idle connection was closed by the other side (it reads as ready while idle)."""
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


@lru_cache(maxsize=4096)
def _quoted(value: str) -> str:
    """A form field's name or value, URL-encoded: names, senders, numbers and callback URLs
    repeat from message to message."""
    return quote_plus(value)


def form_encoded(data: dict[str, object]) -> str:
    """`data` as `urlencode(data, doseq=True)` encodes it: a list gives one field per item."""
    fields = []
    for name, value in data.items():
        key = _quoted(str(name))
        if isinstance(value, (list, tuple)):
            fields.extend(f"{key}={_quoted(str(item))}" for item in value)
        else:
            fields.append(f"{key}={_quoted(str(value))}")
    return "&".join(fields)


class _Connection:
    """One kept-alive HTTP/1.1 connection: the socket http.client opened (TLS, a proxy's
    tunnel) and a buffered reader of it. One exchange at a time."""

    def __init__(self, opened: http.client.HTTPConnection) -> None:
        opened.connect()
        assert opened.sock is not None
        self.sock: socket.socket = opened.sock
        self.reader = self.sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def exchange(self, head: bytes, body: bytes | None) -> tuple[int, dict[str, str], bytes, bool]:
        """Write one request, read its response: (status, headers, body, whether the
        connection must close after it)."""
        self.sock.sendall(head + body if body else head)
        while True:
            version, status = self._status_line()
            headers = self._headers()
            if status != 100:  # a "100 Continue" before the real answer is skipped
                break
        fields = {name.lower(): value for name, value in headers.items()}
        connection = fields.get("connection", "").lower()
        close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
        if status in (204, 304) or 100 <= status < 200:
            return status, headers, b"", close
        if "chunked" in fields.get("transfer-encoding", "").lower():
            return status, headers, self._chunked(), close
        length = fields.get("content-length")
        if length is None:  # the body runs to the end of the connection
            return status, headers, self.reader.read(), True
        content = self.reader.read(int(length))
        if len(content) < int(length):
            raise http.client.IncompleteRead(content, int(length) - len(content))
        return status, headers, content, close

    def _line(self) -> bytes:
        line = self.reader.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("header line")
        return line

    def _status_line(self) -> tuple[str, int]:
        line = self._line()
        if not line:
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        parts = line.decode("iso-8859-1").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise http.client.BadStatusLine(line.decode("iso-8859-1", "replace"))
        return parts[0], int(parts[1])

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            line = self._line()
            if line in (b"\r\n", b"\n", b""):
                return headers
            name, _, value = line.decode("iso-8859-1").partition(":")
            name, value = name.strip(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")

    def _chunked(self) -> bytes:
        chunks = []
        while True:
            size = int(self._line().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self._line() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunk = self.reader.read(size)
            if len(chunk) < size:
                raise http.client.IncompleteRead(chunk, size - len(chunk))
            chunks.append(chunk)
            self.reader.read(2)  # the chunk's CRLF


class _Route:
    """Where connections go for one base URL: straight there, or through the environment's
    proxy (a CONNECT tunnel for https, absolute URLs for http)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        target = urlsplit(base_url)
        self.https = target.scheme == "https"
        self.host = target.hostname or ""
        self.port = target.port or (443 if self.https else 80)
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=_ca_bundle()) if self.https else None
        proxy = select_proxy(base_url, get_environ_proxies(base_url))
        self.proxy = urlsplit(proxy) if proxy else None
        self.proxy_headers: dict[str, str] = {}
        if self.proxy is not None and self.proxy.username:
            secret = f"{unquote(self.proxy.username)}:{unquote(self.proxy.password or '')}"
            self.proxy_headers["Proxy-Authorization"] = (
                "Basic " + base64.b64encode(secret.encode()).decode()
            )

    def connect(self) -> http.client.HTTPConnection:
        if self.proxy is None:
            host, port = self.host, self.port
        else:
            host, port = self.proxy.hostname or "", self.proxy.port or 8080
        if self.https:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=self.timeout, context=self.context
            )
            if self.proxy is not None:
                connection.set_tunnel(self.host, self.port, headers=self.proxy_headers)
            return connection
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    @property
    def host_header(self) -> str:
        default = 443 if self.https else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"

    def target(self, url: str) -> str:
        """What goes on the request line: the path, or the whole URL to an http proxy."""
        if self.proxy is not None and not self.https:
            return url
        parts = urlsplit(url)
        return f"{parts.path or '/'}{'?' + parts.query if parts.query else ''}"


class PooledHttpClient(HttpClient):
    """A twilio `HttpClient` over pooled keep-alive connections: the library builds and parses
    every request; this only carries it."""

    def __init__(
        self, base_url: str, *, size: int, timeout: float, logger: logging.Logger
    ) -> None:
        super().__init__(logger, False, timeout)
        self.route = _Route(base_url, timeout)
        self.size = size
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._authorization: dict[tuple[str, str], str] = {}
        self._host = f"Host: {self.route.host_header}\r\n"
        self._proxy_auth = "".join(
            f"{name}: {value}\r\n" for name, value in self.route.proxy_headers.items()
        ) if self.route.proxy is not None and not self.route.https else ""

    def _take(self) -> _Connection:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if not _dropped(connection.sock):
                    return connection
                connection.close()
        return _Connection(self.route.connect())

    def _give_back(self, connection: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(connection)
                return
        connection.close()

    def _basic(self, auth: tuple[str, str]) -> str:
        value = self._authorization.get(auth)
        if value is None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            value = self._authorization[auth] = f"Basic {token}"
        return value

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """One request, as the library's own client makes it (form or JSON body, basic auth);
        a connection or timeout error is raised as it comes (never retried here)."""
        sent = dict(headers or {})
        if auth is not None:
            sent["Authorization"] = self._basic(auth)
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params, doseq=True)}"
        body: bytes | None = None
        if data:
            text = (json.dumps(data) if sent.get("Content-Type", "").endswith("json")
                    else form_encoded(data))
            body = text.encode()
        if self.logger.isEnabledFor(logging.INFO):
            self.log_request({"method": method.upper(), "url": url, "params": None,
                              "headers": headers})
        head = self._head(method.upper(), self.route.target(url), sent, body)
        connection = self._take()
        try:
            if timeout is not None:
                connection.sock.settimeout(timeout)
            status, answered, content, close = connection.exchange(head, body)
        except BaseException:
            connection.close()
            raise
        if close:
            connection.close()
        else:
            if timeout is not None:
                connection.sock.settimeout(self.route.timeout)
            self._give_back(connection)
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info("Response Status Code: %s", status)
        return Response(status, content.decode("utf-8", "replace"), answered)

    def _head(self, method: str, target: str, headers: dict[str, str], body: bytes | None) -> bytes:
        """The request line and headers, as http.client writes them (Host, Accept-Encoding:
        identity, Content-Length for a body)."""
        lines = [f"{method} {target} HTTP/1.1\r\n", self._host, self._proxy_auth]
        names = {name.lower() for name in headers}
        if "accept-encoding" not in names:
            lines.append("Accept-Encoding: identity\r\n")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}\r\n")
        elif method in ("POST", "PUT", "PATCH"):
            lines.append("Content-Length: 0\r\n")
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"invalid header {name!r}")
            lines.append(f"{name}: {value}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("iso-8859-1")

