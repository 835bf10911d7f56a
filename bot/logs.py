"""Phone numbers never reach a log line or a stored traceback: they are masked on the way out."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from bot.participants.phones import mask

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


_installed = False


def install() -> None:
    """Mask numbers in every record of every logger (once per process): the record factory
    runs for each record, whichever library or handler it ends up in."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()
    scrub = RedactingFilter()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        scrub.filter(record)
        return record

    logging.setLogRecordFactory(factory)


class JobError(RuntimeError):
    """A job's failure, as stored with the failed job: its message with numbers masked."""


def redacted_failures(job: F) -> F:
    """Re-raise a job's exception with numbers masked and no chained original, so the failed-job
    record RQ keeps in Redis carries no phone number (jobs take ids, never numbers)."""

    @wraps(job)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return job(*args, **kwargs)
        except Exception as exc:
            raise JobError(redact(f"{type(exc).__name__}: {exc}")) from None

    return run  # type: ignore[return-value]
