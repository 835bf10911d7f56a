"""The twilio library's HTTP client, on a pool of keep-alive connections shared by a worker's
sending threads.

The library's own client goes through requests, which reads the proxy and certificate settings
from the environment again on every request and builds a prepared request, a session merge and
a urllib3 retry plan each time: most of a send's CPU. Here the environment is read once, when
the client is made, with the same rules (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE,
CURL_CA_BUNDLE, certifi's bundle), and each request is one exchange on a pooled connection of
the standard library's http.client.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import select
import ssl
import threading
from urllib.parse import unquote, urlencode, urlsplit

from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_environ_proxies, select_proxy
from twilio.http import HttpClient
from twilio.http.response import Response


def _ca_bundle() -> str:
    """The certificates requests would verify with."""
    return (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        or DEFAULT_CA_BUNDLE_PATH
    )


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection was closed by the other side (it reads as ready while idle)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


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
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._authorization: dict[tuple[str, str], str] = {}

    def _take(self) -> http.client.HTTPConnection:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if not _dropped(connection):
                    return connection
                connection.close()
        return self.route.connect()

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
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
                    else urlencode(data, doseq=True))
            body = text.encode()
        if self.logger.isEnabledFor(logging.INFO):
            self.log_request({"method": method.upper(), "url": url, "params": None,
                              "headers": headers})
        connection = self._take()
        try:
            if timeout is not None and connection.sock is not None:
                connection.sock.settimeout(timeout)
            connection.request(method.upper(), self.route.target(url), body=body, headers=sent)
            answer = connection.getresponse()
            content = answer.read()
        except BaseException:
            connection.close()
            raise
        if timeout is not None and connection.sock is not None:
            connection.sock.settimeout(self.route.timeout)
        if answer.will_close:
            connection.close()
        else:
            self._give_back(connection)
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info("Response Status Code: %s", answer.status)
        return Response(answer.status, content.decode("utf-8", "replace"), answer.headers)
