"""Status callbacks: each accepted message becomes sent, then delivered (or fails), and says so."""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bot.clock import now
from bot.participants.phones import mask
from bot.sandbox.store import Message, MessageStore
from bot.sandbox.webhooks import WebhookError, post_signed
from bot.sandbox.wire import API_VERSION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """One status a message moves to, with the error that came with it, if any."""

    status: str
    error_code: int | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class Job:
    """The statuses still ahead of one message, in order."""

    sid: str
    steps: tuple[Step, ...]


def callback_params(message: Message, step: Step) -> dict[str, str]:
    """The form parameters Twilio posts to a StatusCallback URL."""
    params = {
        "SmsSid": message.sid,
        "SmsStatus": step.status,
        "MessageStatus": step.status,
        "To": message.to,
        "MessageSid": message.sid,
        "AccountSid": message.account_sid,
        "From": message.from_,
        "ApiVersion": API_VERSION,
    }
    if message.messaging_service_sid:
        params["MessagingServiceSid"] = message.messaging_service_sid
    if step.status in ("delivered", "undelivered", "failed"):
        params["RawDlrDoneDate"] = now().strftime("%y%m%d%H%M")  # the carrier's YYMMDDhhmm
    if step.error_code is not None:
        params["ErrorCode"] = str(step.error_code)
    return params


class StatusCallbacks:
    """Moves messages through their statuses after a delay and posts each to its callback URL.

    One dispatcher thread collects due work and a small pool posts it, so thousands of messages
    a second cost a handful of threads. A message's next status is queued only once the previous
    callback has been answered, so callbacks for one message always arrive in order.
    """

    def __init__(
        self, *, store: MessageStore, auth_token: str, delay: float, workers: int = 8
    ) -> None:
        self._store = store
        self._auth_token = auth_token
        self._delay = delay
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox-callback")
        self._counts_lock = threading.Lock()
        self._counts = {"posted": 0, "failed": 0, "in_flight": 0}
        self._thread = threading.Thread(
            target=self._dispatch, name="sandbox-callback-dispatcher", daemon=True
        )
        self._thread.start()

    def schedule(self, sid: str, steps: list[Step]) -> None:
        """Move message `sid` through `steps`, one every `delay` seconds or so."""
        if steps:
            with self._counts_lock:
                self._counts["in_flight"] += 1
            self._queue.put(Job(sid, tuple(steps)))

    def counts(self) -> dict[str, int]:
        """Callbacks posted, callbacks that failed, and messages whose statuses are still ahead."""
        with self._counts_lock:
            return dict(self._counts)

    def close(self) -> None:
        """Stop dispatching; work still waiting is dropped."""
        self._closing.set()
        self._queue.put(None)
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _dispatch(self) -> None:
        while not self._closing.is_set():
            job = self._queue.get()
            if job is None:
                return
            batch = [job]
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    return
                batch.append(more)
            # Waiting on an event, not reading a clock, keeps callbacks flowing in tests that
            # freeze time. Work arriving meanwhile waits for the next round.
            if self._closing.wait(self._delay):
                return
            for job in batch:
                self._pool.submit(self._advance, job)

    def _advance(self, job: Job) -> None:
        step, rest = job.steps[0], job.steps[1:]
        message: Message | None = None
        try:
            message = self._store.update_status(
                job.sid, step.status, error_code=step.error_code, error_message=step.error_message
            )
            if message is not None and message.status_callback:
                self._post(message, step)
        except Exception:  # a bug here must not silently stop a message mid-way
            log.exception("sandbox: status callback for %s failed", job.sid)
        if rest and message is not None and not self._closing.is_set():
            self._queue.put(Job(job.sid, rest))
            return
        with self._counts_lock:
            self._counts["in_flight"] -= 1

    def _post(self, message: Message, step: Step) -> None:
        url = message.status_callback or ""
        try:
            response = post_signed(url, callback_params(message, step), auth_token=self._auth_token)
        except WebhookError as exc:
            # The bot being down is something to report, never a reason for the sandbox to stop.
            log.warning(
                "sandbox: status callback %s for %s to %s could not be delivered: %s",
                step.status,
                mask(message.to),
                url,
                exc,
            )
            self._count("failed")
            return
        if not 200 <= response.status < 300:
            log.warning(
                "sandbox: status callback %s for %s to %s answered HTTP %s",
                step.status,
                mask(message.to),
                url,
                response.status,
            )
            self._count("failed")
            return
        self._count("posted")

    def _count(self, key: str) -> None:
        with self._counts_lock:
            self._counts[key] += 1
