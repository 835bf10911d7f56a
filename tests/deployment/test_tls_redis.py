"""Managed Redis over TLS (`rediss://`), with the self-signed certificate hosts like Heroku give
it: a real redis-server serving TLS only, on a certificate this test makes."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from rq import SimpleWorker

from bot import create_app
from bot.delivery.queues import connect_redis, delivery_queue
from bot.delivery.ratelimit import RateLimiter
from bot.settings import Settings, SettingsError
from worker import context, jobs


@dataclass(frozen=True)
class TLSRedis:
    url: str
    certificate: Path  # self-signed: it is its own CA
    other_certificate: Path  # a CA that did not sign the server's certificate


def make_certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    certificate, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
         "-out", str(certificate), "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=10,
    )
    return certificate, key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_tls(port: int, server: subprocess.Popen[bytes]) -> None:
    unverified = ssl.create_default_context()
    unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server.stdout.read().decode() if server.stdout else ""
            pytest.fail(f"redis-server did not start with TLS:\n{output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw, \
                    unverified.wrap_socket(raw):
                return
        except OSError:
            time.sleep(0.02)
    pytest.fail("redis-server did not accept TLS connections within 5 s")


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSRedis]:
    folder = tmp_path_factory.mktemp("tls-redis")
    certificate, key = make_certificate(folder, "server")
    other, _ = make_certificate(folder, "other")
    port = free_port()
    # --port 0: no plain-text port at all, so every connection below is TLS.
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port),
         "--tls-cert-file", str(certificate), "--tls-key-file", str(key),
         "--tls-ca-cert-file", str(certificate), "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_tls(port, server)
        yield TLSRedis(f"rediss://127.0.0.1:{port}/0", certificate, other)
    finally:
        server.terminate()
        server.wait(timeout=5)


def tls_settings(tls_redis: TLSRedis, tmp_path: Path, **environ: str) -> Settings:
    return Settings.from_env(
        {"TEND_INSTANCE_DIR": str(tmp_path), "REDIS_URL": tls_redis.url, **environ}
    )


def test_with_tls_verify_off_web_worker_queue_and_rate_limit_all_work(
    tls_redis: TLSRedis, tmp_path: Path
) -> None:
    settings = tls_settings(tls_redis, tmp_path, REDIS_TLS_VERIFY="false")
    assert connect_redis(settings).ping()

    ctx = context.use(settings)  # what `bot worker` and `bot dispatcher` build
    queue = delivery_queue(settings, ctx.redis)
    job = queue.enqueue(jobs.import_participants, "an-import-nobody-started")
    SimpleWorker([queue], connection=ctx.redis).work(burst=True, with_scheduler=False)
    assert job.get_status(refresh=True) == "finished"
    assert job.return_value() == "finished"  # the job read its import's state over TLS

    first, second = (RateLimiter(connect_redis(settings), "+15005550006", 10.0)
                     for _ in range(2))
    first_slots, second_slots = first.reserve(1), second.reserve(1)
    assert second_slots.first - first_slots.first == pytest.approx(0.1, abs=0.05)

    health = create_app(settings).test_client().get("/healthz").get_json()
    assert health["redis"]["status"] == "ok"  # the web app's own connection


def test_by_default_a_self_signed_certificate_is_refused_naming_the_setting_to_change(
    tls_redis: TLSRedis, tmp_path: Path
) -> None:
    with pytest.raises(redis.ConnectionError) as caught:
        connect_redis(tls_settings(tls_redis, tmp_path)).ping()
    message = str(caught.value)
    assert "certificate verify failed: self-signed certificate" in message
    assert "set REDIS_TLS_VERIFY=false, or set REDIS_CA_FILE" in message


def test_a_ca_file_verifies_the_servers_certificate_against_it(
    tls_redis: TLSRedis, tmp_path: Path
) -> None:
    assert connect_redis(
        tls_settings(tls_redis, tmp_path, REDIS_CA_FILE=str(tls_redis.certificate))
    ).ping()
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        connect_redis(
            tls_settings(tls_redis, tmp_path, REDIS_CA_FILE=str(tls_redis.other_certificate))
        ).ping()


def test_the_worker_process_works_its_queue_on_tls_redis(
    tls_redis: TLSRedis, tmp_path: Path
) -> None:
    settings = tls_settings(tls_redis, tmp_path, REDIS_TLS_VERIFY="false")
    job = delivery_queue(settings, connect_redis(settings)).enqueue(
        jobs.import_participants, "an-import-nobody-started"
    )
    env = {"PATH": os.environ["PATH"], "TEND_ENV": "development", "REDIS_URL": tls_redis.url,
           "REDIS_TLS_VERIFY": "false", "TEND_INSTANCE_DIR": str(tmp_path)}
    bot = str(Path(sys.executable).parent / "bot")
    result = subprocess.run([bot, "worker", "--burst"], env=env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert job.get_status(refresh=True) == "finished"


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"REDIS_CA_FILE": "/nowhere/ca.pem"},
         "REDIS_CA_FILE names no file: /nowhere/ca.pem (a PEM bundle of the CA that signed "
         "Redis's certificate)"),
        ({"REDIS_CA_FILE": "{not_pem}"},
         "REDIS_CA_FILE is not a PEM certificate bundle Tend can read: {not_pem}"),
        ({"REDIS_CA_FILE": "{not_pem}", "REDIS_TLS_VERIFY": "false"},
         "REDIS_CA_FILE is set but REDIS_TLS_VERIFY is false"),
        ({"REDIS_TLS_VERIFY": "sometimes"},
         "REDIS_TLS_VERIFY must be true or false, not 'sometimes'"),
    ],
)
def test_redis_tls_settings_that_cannot_work_are_refused_at_start(
    environ: dict[str, str], problem: str, tmp_path: Path
) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n", encoding="utf-8")
    environ = {name: value.format(not_pem=not_pem) for name, value in environ.items()}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"REDIS_URL": "rediss://redis.example.org:6380", **environ})
    assert problem.format(not_pem=not_pem) in caught.value.problems[0]
