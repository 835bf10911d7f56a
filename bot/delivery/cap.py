"""Quiet hours and the daily cap: when a participant's next automated message may go."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from bot.care.programs import Program
from bot.care.timing import local_day_bounds, local_moment, next_allowed, zone
from bot.settings import Settings
from bot.store.models import Delivery, DeliveryStatus, Participant

# What the daily cap counts: every message the program sends on its own. Replies to a text
# (HELP, a CHECKIN's state question) are answers the participant asked for and do not count.
AUTOMATED_KINDS = ("welcome", "event", "narrative", "reminder", "state", "finished")
NOT_RECEIVED = (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED)
CAP_LOOKAHEAD = timedelta(days=15)  # _allowed_at looks at most a fortnight ahead


def _limits(settings: Settings, program: Program | None) -> tuple[time, time, int]:
    """Quiet hours (start, end) and the daily cap that apply to a program's participants."""
    start, end = (program.quiet_hours if program and program.quiet_hours else None) or (
        settings.quiet_hours_start,
        settings.quiet_hours_end,
    )
    cap = (program.daily_cap if program else None) or settings.daily_message_cap
    return start, end, cap


def _counts_against_cap(
    status: str, sent_at: datetime | None, started_at: datetime | None,
    day_start: datetime, day_end: datetime,
) -> bool:
    """What counts against a day's cap: what reached the provider that day, plus what is on its
    way there now (claimed by this batch or another worker); a message the carrier could not
    deliver never interrupted anyone, so its retry is not counted twice."""
    if sent_at is not None and day_start <= sent_at < day_end:
        return status not in NOT_RECEIVED
    return (
        status == DeliveryStatus.SENDING
        and started_at is not None
        and day_start <= started_at < day_end
    )


class _DayCounts:
    """The automated messages of a batch's participants around its days, read in one query
    before the batch changes anything, then counted in Python.

    The rows the batch moves to sending are added as they are claimed, so the cap holds within
    a batch.
    """

    def __init__(self, session: Session, participant_ids: set[int], moment: datetime):
        self.moment = moment
        self.claimed: dict[int, int] = defaultdict(int)
        self.stamps: dict[int, list[tuple[str, datetime | None, datetime | None]]] = (
            defaultdict(list)
        )
        if not participant_ids:
            return
        # Local days start up to 14 hours before UTC's; a day back covers every zone.
        low, high = moment - timedelta(days=1), moment + CAP_LOOKAHEAD
        found = session.exec(
            select(
                Delivery.participant_id, Delivery.status, Delivery.sent_at,
                Delivery.send_started_at,
            ).where(
                col(Delivery.participant_id).in_(participant_ids),
                col(Delivery.kind).in_(AUTOMATED_KINDS),
                or_(col(Delivery.via) == "api", col(Delivery.kind) == "welcome"),
                or_(
                    and_(col(Delivery.sent_at) >= low, col(Delivery.sent_at) < high),
                    and_(
                        col(Delivery.send_started_at) >= low,
                        col(Delivery.send_started_at) < high,
                    ),
                ),
            )
        ).all()
        for participant_id, status, sent_at, started_at in found:
            self.stamps[participant_id].append((status, sent_at, started_at))

    def count(self, participant_id: int, day_start: datetime, day_end: datetime) -> int:
        total = sum(
            _counts_against_cap(status, sent_at, started_at, day_start, day_end)
            for status, sent_at, started_at in self.stamps.get(participant_id, ())
        )
        if day_start <= self.moment < day_end:
            total += self.claimed[participant_id]
        return total

    def claim(self, participant_id: int) -> None:
        """A row of this participant moved to sending at `moment`."""
        self.claimed[participant_id] += 1


def _allowed_at(
    *, session: Session, settings: Settings, participant: Participant, program: Program | None,
    moment: datetime, counts: _DayCounts | None = None,
) -> datetime:
    """The earliest moment at or after `moment` outside quiet hours and under the daily cap."""
    assert participant.id is not None
    counts = counts or _DayCounts(session, {participant.id}, moment)
    tz = zone(participant.timezone)
    start, end, cap = _limits(settings, program)
    candidate = next_allowed(moment, tz, start, end)
    for _ in range(14):  # a fortnight of full days would mean something else is wrong
        day_start, day_end = local_day_bounds(candidate, tz)
        if counts.count(participant.id, day_start, day_end) < cap:
            return candidate
        tomorrow = candidate.astimezone(tz).date() + timedelta(days=1)
        candidate = next_allowed(local_moment(tomorrow, end, tz), tz, start, end)
    return candidate


def quiet_until(
    settings: Settings, program: Program | None, timezone: str, moment: datetime
) -> datetime | None:
    """When the participant's quiet hours around `moment` end; None outside them."""
    start, end, _cap = _limits(settings, program)
    allowed = next_allowed(moment, zone(timezone), start, end)
    return allowed if allowed > moment else None
