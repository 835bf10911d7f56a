"""Who is told of a crisis, and when: the notification channels that are set, the on-call rota,
staffed hours, and what the safety reply may promise the participant because of them."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.settings import Settings

NO_CONTACT = "Automated messages are paused and your message is saved for the study team."
CONTACT = (
    "Automated messages are paused. We are letting our team know now, and a person will reach "
    "out to you as soon as they can."
)


def masked(phone: str) -> str:
    """+•••••••0142, as phone numbers are shown in logs everywhere."""
    digits = [c for c in phone if c.isdigit()]
    return ("+" if phone.startswith("+") else "") + "•" * (len(digits) - 4) + "".join(digits[-4:])


def channels(settings: Settings) -> list[str]:
    """The channels that reach a person: sms (on-call numbers), email, webhook."""
    configured = {
        "sms": bool(settings.oncall_phones),
        "email": bool(settings.alert_emails and settings.smtp_url),
        "webhook": bool(settings.alert_webhook_url),
    }
    return [name for name, on in configured.items() if on]


def on_call(settings: Settings, round_: int) -> str | None:
    """The number texted in escalation round `round_`: the rota in order, then round again."""
    rota = settings.oncall_phones
    return rota[round_ % len(rota)] if rota else None


def staff_zone(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.staffed_timezone or settings.default_timezone)


def staffed(settings: Settings, moment: datetime) -> bool:
    """Whether a person is in at `moment` (always, when no staffed hours are set)."""
    hours = settings.staffed_hours
    return hours is None or hours.is_open(moment, staff_zone(settings))


def _clock_words(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    minutes = f":{moment.minute:02d}" if moment.minute else ""
    return f"{hour}{minutes} {'AM' if moment.hour < 12 else 'PM'}"


def when_words(opening: datetime, moment: datetime) -> str:
    """`opening` in plain words as seen at `moment` in the same zone: "today at 2 PM",
    "tomorrow at 9 AM", "on Monday at 9:30 AM"."""
    days = (opening.date() - moment.astimezone(opening.tzinfo).date()).days
    day = {0: "today", 1: "tomorrow"}.get(days, f"on {opening.strftime('%A')}")
    return f"{day} at {_clock_words(opening)}"


def promise(settings: Settings, moment: datetime, timezone: str | None = None) -> str:
    """What the safety reply says about human contact. A person will reach out only when a
    channel reaches one and it is within staffed hours; outside them, when someone will see
    the message (in the participant's `timezone` if known, else in the staff's, named)."""
    if not channels(settings):
        return NO_CONTACT
    if staffed(settings, moment):
        return CONTACT
    assert settings.staffed_hours is not None  # staffed() is always true without hours
    opening = settings.staffed_hours.next_opening(moment, staff_zone(settings))
    try:
        when = when_words(opening.astimezone(ZoneInfo(timezone or "")), moment)
    except (ValueError, KeyError):  # no zone or an unknown one: the staff's, named
        when = f"{when_words(opening, moment)} ({opening.tzname()})"
    return (
        f"{NO_CONTACT} Our team is away right now; someone will see your message when they are "
        f"back, {when}."
    )
