"""Operator logs: one line per event, structured, naming the request, job or tick it belongs to.

Phone numbers never reach a log line or a stored traceback: they are masked on the way out.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Callable
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from functools import wraps
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from bot.participants.phones import mask
from bot.settings import LOG_FORMATS, SettingsError, environment

if TYPE_CHECKING:
    from flask import Flask, Response

# E.164 (+14155550123), bare runs of 10 to 15 digits, and (415) 555-0123 / 415-555-0123 forms;
# dates and times (2026-06-01 12:00:00) do not match.
_PHONE = re.compile(
    r"\+\d{7,15}(?!\d)|(?<![\d.])\d{10,15}(?![\d.])"
    r"|(?<!\d)\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\d)"
)

F = TypeVar("F", bound=Callable[..., Any])


def redact(text: str) -> str:
    """`text` with every phone number in it masked (+•••••••0123)."""
    return _PHONE.sub(lambda m: mask(m.group(0)), text)


class RedactingFilter(logging.Filter):
    """Masks numbers in a record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        message = record.getMessage()
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record._redacted = True  # type: ignore[attr-defined]
        return True


# What the records logged here and now belong to: request_id, tick (job_id comes from RQ).
_context: ContextVar[dict[str, object] | None] = ContextVar("tend_log_context", default=None)


def bind(**fields: object) -> Token[dict[str, object] | None]:
    """Add `fields` to every record logged from here on in this thread, until `unbind`."""
    return _context.set({**(_context.get() or {}), **fields})


def unbind(token: Token[dict[str, object] | None]) -> None:
    _context.reset(token)


# The RQ job this worker process is running (a worker runs one at a time), for the records of
# the threads it starts too, which do not see RQ's own note of it.
_job_in_hand: str | None = None


def _current_job_id() -> str | None:
    jobs = sys.modules.get("rq.job")
    job = jobs.get_current_job() if jobs is not None else None
    return job.id if job is not None else _job_in_hand


def _context_now() -> dict[str, object]:
    fields = dict(_context.get() or {})
    job_id = _current_job_id()
    if job_id is not None:
        fields.setdefault("job_id", job_id)
    return fields


_installed = False


def install() -> None:
    """Mask numbers in every record of every logger (once per process), and note what each
    belongs to: the record factory runs for each record, whichever handler it ends up in."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()
    scrub = RedactingFilter()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        scrub.filter(record)
        record.tend_context = _context_now()  # type: ignore[attr-defined]
        return record

    logging.setLogRecordFactory(factory)


class _Fields(logging.Formatter):
    """A record as its fields: time, level, logger, message, what it belongs to, traceback."""

    def fields(self, record: logging.LogRecord) -> dict[str, object]:
        moment = datetime.fromtimestamp(record.created, UTC)
        fields: dict[str, object] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "tend_context", {}),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            fields["exception"] = record.exc_text
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        # The last line of defence: whatever a field holds, no number leaves unmasked.
        return {name: redact(v) if isinstance(v, str) else v for name, v in fields.items()}


class JsonFormatter(_Fields):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.fields(record), ensure_ascii=False, default=str)


def _logfmt_value(value: object) -> str:
    text = "" if value is None else str(value)
    if text and not re.search(r'[\s"=\\]', text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'


class LogfmtFormatter(_Fields):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{name}={_logfmt_value(v)}" for name, v in self.fields(record).items())


class TextFormatter(_Fields):
    """For a terminal: the fields in a row, a traceback on the lines below."""

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields(record)
        line = " ".join(str(fields.pop(name)) for name in ("time", "level", "logger", "message"))
        trace = [str(fields.pop(name)) for name in ("exception", "stack") if name in fields]
        if fields:
            line += " [" + " ".join(f"{name}={v}" for name, v in fields.items()) + "]"
        return "\n".join([line, *trace])


FORMATTERS: dict[str, type[_Fields]] = dict(
    zip(LOG_FORMATS, (JsonFormatter, LogfmtFormatter, TextFormatter), strict=True)
)


def chosen_format(log_format: str, *, production: bool) -> str:
    """LOG_FORMAT, or its default: JSON in production, text locally."""
    return log_format if log_format in FORMATTERS else ("json" if production else "text")


def _environment_format() -> tuple[str, bool]:
    """LOG_FORMAT and TEND_ENV read straight from the environment: the commands start logging
    before they read the settings, which refuse a bad value of either with the rest."""
    try:
        production = environment() == "production"
    except SettingsError:
        production = False
    return os.environ.get("LOG_FORMAT", "").strip().lower(), production


def configure(
    log_format: str | None = None, *, production: bool = False, stream: TextIO | None = None
) -> None:
    """Log at INFO, one line per record, to `stream` (stdout) in `log_format` (None: as the
    environment says), numbers masked. Replaces what an earlier call set up; leaves logging
    alone where something else already set it up (a test runner, a program embedding the app).
    """
    install()
    root = logging.getLogger()
    if any(not getattr(handler, "tend_handler", False) for handler in root.handlers):
        return
    if log_format is None:
        log_format, production = _environment_format()
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.tend_handler = True  # type: ignore[attr-defined]
    handler.setFormatter(FORMATTERS[chosen_format(log_format, production=production)]())
    handler.addFilter(RedactingFilter())
    for earlier in list(root.handlers):
        root.removeHandler(earlier)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)  # a warning is a log line too, not a stray one on stderr


# Heroku's router sets X-Request-ID: 20 to 200 of these characters (a UUID by default).
_REQUEST_ID = re.compile(r"[A-Za-z0-9+/=._:-]{1,200}")


def request_id(header: str | None) -> str:
    """The id the router gave a request, or a new one if it gave none (or a malformed one)."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return str(uuid.uuid4())


def trace_requests(app: Flask) -> None:
    """Every log line of a request carries its id, which the response echoes (X-Request-ID)."""
    from flask import g, request

    @app.before_request
    def bind_request_id() -> None:
        g.request_id = request_id(request.headers.get("X-Request-ID"))
        g.request_log = bind(request_id=g.request_id)

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response

    @app.teardown_request
    def unbind_request_id(_error: BaseException | None) -> None:
        token = g.pop("request_log", None)
        if token is not None:
            unbind(token)


class JobError(RuntimeError):
    """A job's failure, as stored with the failed job: its message with numbers masked."""


def redacted_failures(job: F) -> F:
    """Re-raise a job's exception with numbers masked and no chained original, so the failed-job
    record RQ keeps in Redis carries no phone number (jobs take ids, never numbers); its log
    lines, from whichever thread, carry its job id."""

    @wraps(job)
    def run(*args: Any, **kwargs: Any) -> Any:
        global _job_in_hand
        _job_in_hand = _current_job_id()
        try:
            return job(*args, **kwargs)
        except Exception as exc:
            raise JobError(redact(f"{type(exc).__name__}: {exc}")) from None
        finally:
            _job_in_hand = None

    return run  # type: ignore[return-value]
