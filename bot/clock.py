"""The one place the service asks what time it is (so tests can freeze or travel it)."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """Aware UTC now."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Treat a naive datetime (as SQLite returns them) as UTC; convert aware ones."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
