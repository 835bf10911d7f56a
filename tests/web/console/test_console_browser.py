"""The console in a real headless Chromium against the real app on a live server: a coach signs
in, finds a participant, reveals their number; an admin sees the reveal in the audit log; every
page is photographed at desktop and phone widths (TEND_SCREENSHOTS keeps the pictures)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from bot import create_app
from bot.clock import now
from bot.settings import Settings
from bot.store.support import Conversation
from tests.conftest import (  # noqa: F401
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    LiveServer,
)
from tests.people.factories import PASSWORD, PHONE, TEAM, add_note, add_team, participant_with_story

pytestmark = pytest.mark.browser
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def seeded(pg_engine: Engine) -> Iterator[dict[str, Any]]:
    """One live console for the module, with a team and a participant two weeks in."""
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with pg_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    settings = Settings(
        env="test", testing=True, database_url=TEST_DATABASE_URL, redis_url=TEST_REDIS_URL,
        narratives_dir=ROOT / "narratives", instance_dir=ROOT / "instance" / "browser-test",
    ).validated()
    with Session(pg_engine, expire_on_commit=False) as session:
        team = add_team(session)
        person = participant_with_story(session, start=now() - timedelta(days=14), days=12)
        add_note(session, participant=person, author=team["coach"], at=now() - timedelta(days=1),
                 body="Called back: safe, has support at home tonight. Check in tomorrow.")
        participant_with_story(session, start=now() - timedelta(days=3), phone="+14155550188",
                               days=2)
        talk = Conversation(participant_id=person.id, reason="crisis", severity=0,
                            opened_at=now() - timedelta(days=1, minutes=30),
                            waiting_since=now() - timedelta(minutes=12),
                            target_at=now() + timedelta(minutes=3))
        session.add(talk)
        session.commit()
    server = LiveServer(create_app(settings))
    yield {"url": server.url, "participant": person, "team": team, "conversation": talk}
    server.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get("TEND_SCREENSHOTS")
    folder = Path(kept) if kept else tmp_path_factory.mktemp("console-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def signed_in(browser: Any, url: str, role: str, viewport: dict[str, int]) -> Any:
    page = browser.new_page(viewport=viewport)
    page.goto(f"{url}/console/login")
    page.get_by_label("Email").fill(TEAM[role])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/console/(inbox|participants)"))
    return page


def test_a_coach_finds_a_participant_and_reveals_their_number_and_an_admin_sees_it_logged(
    browser: Any, seeded: dict[str, Any]
) -> None:
    url, person = seeded["url"], seeded["participant"]
    page = signed_in(browser, url, "coach", WIDTHS["desktop"])
    page.get_by_role("link", name="Participants", exact=True).click()
    page.get_by_label("Phone number").fill(PHONE[-4:])
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=f"Participant {person.id}", exact=True).click()
    page.wait_for_url(re.compile(rf"/console/participants/{person.id}$"))
    phone = page.locator("#phone")
    assert phone.inner_text() == "+•••••••0123"
    assert page.get_by_text("i want to die").is_visible()  # the crisis text, in the timeline
    page.get_by_role("button", name="Reveal").click()
    page.wait_for_function("document.getElementById('phone').dataset.revealed === 'yes'")
    assert phone.inner_text() == "+1 415-555-0123"
    page.close()

    admin = signed_in(browser, url, "admin", WIDTHS["desktop"])
    admin.goto(f"{url}/console/audit?action=view-number")
    row = admin.locator("tbody tr").first
    assert TEAM["coach"] in row.inner_text()
    assert f"#{person.id}" in row.inner_text()
    admin.goto(f"{url}/console/audit?action=view-history&participant={person.id}")
    assert TEAM["coach"] in admin.locator("tbody tr").first.inner_text()
    admin.close()


PAGES = {
    "inbox": ("coach", "/console/inbox"),
    "conversation": ("coach", "/console/conversations/{cid}"),
    "participants": ("coach", "/console/participants"),
    "participant": ("coordinator", "/console/participants/{pid}"),
    "participant-analyst": ("analyst", "/console/participants/{pid}"),
    "account": ("coach", "/console/account"),
    "staff": ("admin", "/console/staff"),
    "audit": ("admin", "/console/audit"),
    "not-allowed": ("coach", "/console/staff"),
}


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_every_page_fits_the_screen_at_desktop_and_phone_widths(
    browser: Any, seeded: dict[str, Any], shots: Path, width: str
) -> None:
    url, pid, cid = seeded["url"], seeded["participant"].id, seeded["conversation"].id
    viewport = WIDTHS[width]
    login = browser.new_page(viewport=viewport)
    login.goto(f"{url}/console/login")
    login.screenshot(path=shots / f"login-{width}.png", full_page=True)
    login.close()
    pages: dict[str, Any] = {}
    for name, (role, path) in PAGES.items():
        page = pages.get(role) or signed_in(browser, url, role, viewport)
        pages[role] = page
        page.goto(url + path.format(pid=pid, cid=cid))
        page.screenshot(path=shots / f"{name}-{width}.png", full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} is {overflow}px wider than a {width} screen"
    for page in pages.values():
        page.close()


def test_the_keyboard_reaches_the_skip_link_first_and_every_control_has_a_name(
    browser: Any, seeded: dict[str, Any]
) -> None:
    page = signed_in(browser, seeded["url"], "coordinator", WIDTHS["desktop"])
    page.goto(f"{seeded['url']}/console/participants/{seeded['participant'].id}")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    unnamed = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length)
                     && !e.getAttribute('aria-label'))
        .map(e => e.name)""")
    assert unnamed == []
    page.close()

