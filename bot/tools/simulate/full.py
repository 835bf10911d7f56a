"""`bot simulate --full`: the bot over real HTTP and RQ, as deployed, in this process.

The bot's web app and the sandbox provider on real HTTP ports, the SQL database, the RQ queue
on Redis, the dispatcher's tick and an RQ SimpleWorker in burst mode, the real twilio library,
signed status callbacks and signed inbound webhooks. Only the carrier's send rate is lifted,
as it means nothing on a virtual clock.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue, SimpleWorker
from sqlalchemy.engine import Engine
from werkzeug.serving import BaseWSGIServer, make_server

from bot import create_app
from bot.delivery.queues import connect_redis, delivery_queue, embedded_redis_url
from bot.delivery.status import apply_unmatched
from bot.sandbox import create_sandbox_app, sandbox_of
from bot.sandbox.app import KeepAliveHandler
from bot.sandbox.inbound import BotError, text_the_bot
from bot.sandbox.state import Sandbox
from bot.settings import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, SANDBOX_FROM_NUMBER, Settings
from bot.store.db import get_engine, session_scope
from bot.tools.simulate.journey import TextFailed
from bot.tools.simulate.plan import Part, SimulationError, real_seconds
from worker import context, dispatcher

log = logging.getLogger(__name__)

# The sandbox posts each status this long after the last (real seconds): long enough that the
# worker has usually stored the sid, as with Twilio, short enough not to hold up the clock.
CALLBACK_DELAY = 0.01
SETTLE_SECONDS = 30.0  # how long status callbacks may take to arrive, in real time
POLL_SECONDS = 0.05  # how soon the HTTP servers notice they are asked to stop
TEXT_THREADS = 4  # participants texting the bot at once (each one's texts stay in order)


class _QuietHandler(KeepAliveHandler):
    """HTTP/1.1 keep-alive (as the sandbox serves it), without an access-log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def _unavailable(environ: Any, start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


def _server() -> BaseWSGIServer:
    return make_server("127.0.0.1", 0, _unavailable, threaded=True, request_handler=_QuietHandler)


class BurstWorker(SimpleWorker):
    """rq's SimpleWorker, run in burst mode in this process between clock steps. It does not
    subscribe to rq's remote commands (stop, kill): their pubsub thread is joined with a
    one-second timeout at the end of every burst, which would cost up to a second per step."""

    def subscribe(self) -> None:
        return None


class FullStack:
    """The bot's web app and the sandbox on free ports, wired to each other, and the worker's
    context pointing at both. `base` gives the database, Redis and content; the rest is set
    here so nothing can reach Twilio or another deployment's queue."""

    texting_threads = TEXT_THREADS

    def __init__(self, base: Settings) -> None:
        self.errors: list[str] = []
        self.parts: dict[str, Part] = {}  # spread over processes: not measured here
        self._failed_seen = 0
        self._servers = [_server(), _server()]
        bot_server, sandbox_server = self._servers
        bot_url = f"http://127.0.0.1:{bot_server.server_port}"
        sandbox_url = f"http://127.0.0.1:{sandbox_server.server_port}"
        self._embedded: redis.Redis | None = None
        redis_url = base.redis_url
        if base.uses_embedded_redis:
            self._embedded = connect_redis(base)
            redis_url = embedded_redis_url(self._embedded)
        self.settings = base.with_overrides(
            env="test" if base.env == "test" else "development",
            redis_url=redis_url,
            public_base_url=bot_url,
            twilio_api_base_url=sandbox_url,
            twilio_account_sid=SANDBOX_ACCOUNT_SID,
            twilio_auth_token=SANDBOX_AUTH_TOKEN,
            twilio_from_number=SANDBOX_FROM_NUMBER,
            twilio_messaging_service_sid="",
            send_rate_per_second=1_000_000.0,
            queue_name=f"simulate-{uuid.uuid4().hex[:12]}",
        )
        bot_server.app = create_app(self.settings)
        self.sandbox_app = create_sandbox_app(
            account_sid=self.settings.twilio_account_sid,
            auth_token=self.settings.twilio_auth_token,
            bot_inbound_url=f"{bot_url}/twilio/sms",
            bot_number=self.settings.twilio_from_number,
            public_url=sandbox_url,
            callback_delay=CALLBACK_DELAY,
        )
        sandbox_server.app = self.sandbox_app
        self._threads = [
            threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS},
                name="simulate-http", daemon=True,
            )
            for server in self._servers
        ]
        for thread in self._threads:
            thread.start()
        self.worker_context = context.use(self.settings)
        self.engine: Engine = get_engine(self.settings.database_url)
        self.queue: Queue = delivery_queue(self.settings, self.worker_context.redis)
        self.worker = BurstWorker([self.queue], connection=self.queue.connection)

    @property
    def sandbox(self) -> Sandbox:
        return sandbox_of(self.sandbox_app)

    def text(self, phone: str, body: str) -> list[str]:
        """One text from the phone, as the sandbox's phone page sends it: the sandbox records it
        and posts Twilio's signed webhook to the bot over HTTP; the bot's TwiML is the reply."""
        try:
            exchange = text_the_bot(self.sandbox, phone=phone, body=body)
        except BotError as exc:
            raise TextFailed(str(exc)) from None
        return [reply.body for reply in exchange.replies]

    def work(self) -> bool:
        """The dispatcher ticks, a worker bursts, callbacks settle."""
        dispatcher.tick(engine=self.engine, queue=self.queue, settings=self.settings)
        if self.queue.count:
            self.worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
            self._note_failed_jobs()
        self._settle()
        return True  # the sandbox's callbacks are not counted here: read the phones anyway

    def _note_failed_jobs(self) -> None:
        """Report each job the worker failed (its exception), once."""
        registry = self.queue.failed_job_registry
        if registry.count <= self._failed_seen:
            return
        self._failed_seen = registry.count
        for job in registry.get_job_ids():
            fetched = self.queue.fetch_job(job)
            detail = (fetched.exc_info or "").strip().splitlines() if fetched else []
            message = f"worker job {job} failed: {detail[-1] if detail else 'no details'}"
            if message not in self.errors:
                self.errors.append(message)
                log.error("%s", fetched.exc_info if fetched else message)

    def _settle(self) -> None:
        """Wait for the sandbox's status callbacks, then apply those that beat the worker."""
        callbacks = self.sandbox.callbacks
        deadline = real_seconds() + SETTLE_SECONDS
        while callbacks.counts()["in_flight"]:
            if real_seconds() > deadline:
                raise SimulationError(f"status callbacks did not settle in {SETTLE_SECONDS:g} s")
            time.sleep(0.001)
        with session_scope(self.engine) as session:
            apply_unmatched(
                session=session, older_than_seconds=0,
                max_attempts=self.settings.max_send_attempts,
            )

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.sandbox.close()
        self.queue.delete(delete_jobs=True)
        if self._embedded is not None:
            # The server closes the connection as it stops: that is the answer, not a reason to
            # retry with backoff (seconds of sleep).
            self._embedded.set_retry(Retry(NoBackoff(), 0))
            self._embedded.shutdown(nosave=True)
