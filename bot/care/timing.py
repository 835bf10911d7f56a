"""Local time for participants: plan in their zone, store UTC, honor quiet hours across DST."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.clock import as_utc


class TimezoneError(ValueError):
    """Not an IANA time zone."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "America" is a folder: OSError
        raise TimezoneError(
            f"{name!r} is not a time zone (use a name like America/Chicago)"
        ) from None


def local_moment(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """`clock` on `day` in `tz` as UTC.

    A wall time skipped by spring-forward maps past the gap (02:30 becomes 03:30) and a repeated
    one at fall-back takes its first occurrence: zoneinfo's fold=0 does both.
    """
    return as_utc(datetime.combine(day, clock).replace(tzinfo=tz, fold=0))


def shift_local_days(moment: datetime, days: int, tz: ZoneInfo) -> datetime:
    """`moment` moved by `days` calendar days in `tz`, keeping its wall time (UTC).

    The wall time is placed on the new day as `local_moment` places it, so one the new day
    skips or repeats maps as it does there.
    """
    local = as_utc(moment).astimezone(tz)
    return local_moment(local.date() + timedelta(days=days), local.time(), tz)


def in_quiet_hours(moment: datetime, tz: ZoneInfo, start: time, end: time) -> bool:
    """Whether `moment` falls in the quiet window [start, end) of its local day."""
    local = as_utc(moment).astimezone(tz).time().replace(tzinfo=None)
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def next_allowed(moment: datetime, tz: ZoneInfo, start: time, end: time) -> datetime:
    """`moment` if it is outside quiet hours, else the end of the quiet window (UTC)."""
    moment = as_utc(moment)
    if not in_quiet_hours(moment, tz, start, end):
        return moment
    local = moment.astimezone(tz)
    day = local.date()
    if start > end and local.time().replace(tzinfo=None) >= start:
        day += timedelta(days=1)
    allowed = local_moment(day, end, tz)
    if allowed <= moment:
        # Fall-back repeated the hour holding `end` and we are in the repeat: its second `end`.
        allowed = as_utc(datetime.combine(day, end).replace(tzinfo=tz, fold=1))
    return allowed


def local_day_bounds(moment: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC start and end of the participant's local calendar day containing `moment`."""
    day = as_utc(moment).astimezone(tz).date()
    return local_moment(day, time(0, 0), tz), local_moment(day + timedelta(days=1), time(0, 0), tz)
