"""What the console's templates share: the navigation, times in a stated zone, numbers masked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import request, url_for

from bot import web
from bot.clock import now
from bot.participants.phones import mask
from bot.people import staff


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: str
    permission: str
    section: str  # the endpoints that belong to it start with this


# The console's sections, in order; a section is shown to those its permission admits.
NAV: list[NavItem] = [
    NavItem("console.inbox", "Inbox", "conversations.reply", "console.inbox"),
    NavItem("console.participants", "Participants", "participants.view", "console.participant"),
    NavItem("console.alerts", "Alerts", "participants.view", "console.alert"),
    NavItem("console.saved_replies", "Saved replies", "replies.manage", "console.saved_repl"),
    NavItem("console.response_times", "Reports", "reports.view", "console.response"),
    NavItem("console.staff_accounts", "Staff", "staff.manage", "console.staff_"),
    NavItem("console.audit_log", "Audit log", "audit.view", "console.audit"),
]


def navigation() -> list[dict[str, Any]]:
    from flask_login import current_user

    person = current_user.staff if current_user.is_authenticated else None
    current = request.endpoint or ""
    return [
        {"url": url_for(item.endpoint), "label": item.label,
         "current": current.startswith(item.section)}
        for item in NAV
        if staff.can(person, item.permission)
    ]


def console_zone() -> ZoneInfo:
    """The zone staff pages show times in (participant pages use the participant's own)."""
    return ZoneInfo(web.settings().default_timezone)


def when(moment: datetime | None, zone: ZoneInfo | str | None = None,
         style: str = "full") -> str:
    """`moment` in `zone` (default: the console's), e.g. "Mon 2 Mar 2026, 14:05 EST"."""
    if moment is None:
        return "—"
    tz = ZoneInfo(zone) if isinstance(zone, str) else (zone or console_zone())
    local = moment.astimezone(tz)
    if style == "time":
        return local.strftime("%H:%M")
    if style == "day":
        return f"{local:%a} {local.day} {local:%b %Y}"
    return f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M %Z}"


def ago(moment: datetime | None) -> str:
    """How long ago, in words a glance can read: "3 min ago", "2 days ago"."""
    if moment is None:
        return "never"
    seconds = int((now() - moment).total_seconds())
    if seconds < 0:
        return "in the future"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "min")):
        if seconds >= size:
            count = seconds // size
            plural = "s" if count != 1 and unit != "min" else ""
            return f"{count} {unit}{plural} ago"
    return "just now"


def zone_name(zone: str) -> str:
    """"America/Chicago (CST, UTC−06:00)": the zone, its abbreviation and offset now."""
    local = now().astimezone(ZoneInfo(zone))
    offset = local.strftime("%z")
    sign = "+" if offset[0] == "+" else "−"
    return f"{zone} ({local:%Z}, UTC{sign}{offset[1:3]}:{offset[3:]})"


HELPERS = {"when": when, "ago": ago, "mask": mask, "zone_name": zone_name}
