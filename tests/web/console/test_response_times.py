"""The reply-time report page: coordinators and admins only; the figures of real conversation
rows, by week in the console's zone and by person, crisis apart, on a frozen clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from freezegun import freeze_time
from sqlmodel import Session

from bot.store.support import Conversation, Staff

ORDER = ("analyst", "coach", "coordinator", "admin")
REPORTS = {"admin", "coordinator"}
# Wednesday 11 March 2026, 11:00 in New York, the console's zone in these tests.
NOW = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
PATH = "/console/reports/response-times"


def opened(session: Session, at: datetime, *, crisis: bool, reply: timedelta | None,
           due: timedelta, by: Staff | None = None, resolve: timedelta | None = None,
           resolver: Staff | None = None) -> None:
    session.add(Conversation(
        reason="crisis" if crisis else "human", severity=0 if crisis else 1, opened_at=at,
        target_at=at + due, assigned_to=by.id if by else None,
        first_reply_at=at + reply if reply else None,
        first_reply_by=by.id if by and reply else None,
        resolved_at=at + resolve if resolve else None,
        resolved_by=resolver.id if resolver and resolve else None,
    ))


def test_only_coordinators_and_admins_may_see_the_report(console_as: Any, app: Flask) -> None:
    assert app.test_client().get(PATH).status_code == 302
    seen = {role: console_as(role).get(PATH).status_code for role in ORDER}
    assert {role for role, status in seen.items() if status != 403} == REPORTS, seen
    for role in ORDER:
        page = console_as(role).get("/console/account").get_data(as_text=True)
        assert (f'href="{PATH}"' in page) is (role in REPORTS), role


@freeze_time(NOW)
def test_the_report_shows_this_weeks_crisis_figures_and_each_persons(
    console_as: Any, session: Session, team: dict[str, Staff]
) -> None:
    coach, coordinator = team["coach"], team["coordinator"]
    monday, tuesday = datetime(2026, 3, 9, 14, tzinfo=UTC), datetime(2026, 3, 10, 14, tzinfo=UTC)
    opened(session, monday, crisis=True, reply=4 * MIN, due=5 * MIN, by=coach,
           resolve=timedelta(hours=2), resolver=coordinator)
    opened(session, tuesday, crisis=True, reply=10 * MIN, due=5 * MIN, by=coach,
           resolve=timedelta(hours=1), resolver=coordinator)
    opened(session, NOW - 30 * MIN, crisis=True, reply=None, due=5 * MIN)  # unanswered, late
    # Sunday night in New York (Monday in UTC): last week's, not this week's.
    opened(session, datetime(2026, 3, 9, 3, 30, tzinfo=UTC), crisis=False, reply=3 * 60 * MIN,
           due=4 * 60 * MIN, by=coordinator)
    session.commit()
    page = console_as("coordinator").get(PATH).get_data(as_text=True)
    crisis, other = page.split('id="crisis-h"')[1].split('id="other-h"')
    this_week = re.search(r"9 Mar – 15 Mar.*?</tr>", crisis, re.S)
    assert this_week is not None
    cells = re.findall(r'<td class="num"[^>]*>(.*?)</td>', this_week.group(0), re.S)
    plain = [re.sub(r"<[^>]+>", "", cell).split()[0] for cell in cells]
    assert plain == ["3", "2", "7", "10", "1", "2"], cells  # opened, answered, 7 min, ...
    assert "7 min" in this_week.group(0) and "10 min" in this_week.group(0)
    assert "1 h 30 min" in this_week.group(0)
    assert "2026-W11, so far" in crisis
    staff_rows = crisis.split("By person")[1]
    assert re.search(r"Cole</th>\s*<td[^>]*>2</td>\s*<td[^>]*>2</td>", staff_rows)
    assert "Cora</th>" in staff_rows
    last_week = re.search(r"2 Mar – 8 Mar.*?</tr>", other, re.S)
    assert last_week is not None and "3 h 00 min" in last_week.group(0)
    assert len(re.findall(r"<th scope=\"row\"><span class=\"nowrap\">", crisis)) == 12


@pytest.mark.parametrize("role", ["coordinator", "admin"])
def test_with_no_conversations_the_report_says_nobody_has_replied(
    console_as: Any, role: str
) -> None:
    page = console_as(role).get(PATH).get_data(as_text=True)
    assert page.count("Nobody has replied to or resolved one of these") == 2
