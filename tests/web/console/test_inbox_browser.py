"""The whole way a person answers a participant in crisis, in a real headless Chromium against
the real app and the sandbox over HTTP: the participant texts "I want to die" from the sandbox
phone; the coach's open inbox shows it without a reload; the on-call phone is texted; the coach
acknowledges the alert, texts back; the text arrives on the participant's phone, and their
answer comes back into the same conversation."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.store.models import Alert, Delivery
from bot.store.support import Conversation
from tests.conftest import wait_for
from tests.delivery.test_faults import deliver, tick
from tests.people.channels import ONCALL, alerting, enroll_participant
from tests.people.factories import PASSWORD, TEAM, add_team
from tests.web.console.test_console_browser import WIDTHS, shots  # noqa: F401

pytestmark = pytest.mark.browser
SAM = "+14155550142"
REPLY = "Hi Sam, this is Cole from the study team. Are you safe right now?"


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    """The test settings with the on-call rota: the web app and the sandbox get them too."""
    return alerting(settings)


def sign_in(page: Any, url: str) -> None:
    page.goto(f"{url}/console/login")
    page.get_by_label("Email").fill(TEAM["coach"])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/console/inbox"))


def test_a_coach_answers_a_participant_in_crisis_from_the_inbox(
    browser: Any, stack: Any, engine: Any, session: Session, redis_conn: Any,
    shots: Path,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    add_team(session)
    enroll_participant(engine, stack.settings, SAM)
    coach = browser.new_page(viewport=WIDTHS["desktop"])
    sign_in(coach, stack.bot.url)
    expect(coach.get_by_text("Nothing waiting here.")).to_be_visible()

    phone = browser.new_page(viewport=WIDTHS["phone"])
    phone.goto(f"{stack.sandbox.url}/phone?number=%2B14155550142")
    box = phone.get_by_label("Message", exact=True)
    texted = time.monotonic()
    box.fill("I want to die")
    box.press("Enter")
    messages = phone.get_by_role("log", name="Messages with the bot")
    expect(messages.locator("li.theirs").last).to_contain_text("988")

    tick(engine, redis_conn)  # the dispatcher's next tick (every second) texts the on-call phone
    [page_text] = [m.body for m in stack.outbound_to(ONCALL[0])]
    paged = time.monotonic() - texted
    # The inbox refreshes itself: the crisis appears on top, without a reload.
    item = coach.locator(".inbox-item.severity-0")
    expect(item).to_contain_text("I want to die", timeout=15_000)
    seen = time.monotonic() - texted
    expect(coach.get_by_role("navigation", name="Folders")).to_contain_text("All open 1")
    alert = session.exec(select(Alert)).one()
    assert page_text.startswith(f"Tend: crisis alert {alert.id}")
    coach.screenshot(path=shots / "inbox-crisis-desktop.png", full_page=True)

    item.locator("a").click()
    coach.wait_for_url(re.compile(r"/console/conversations/\d+"))
    coach.get_by_role("link", name="Open the alert").click()
    coach.get_by_role("button", name="Acknowledge").click()
    expect(coach.get_by_text("Acknowledged").first).to_be_visible()
    session.expire_all()
    assert session.get(Alert, alert.id).acknowledged_by == TEAM["coach"]
    coach.go_back()
    coach.go_back()
    coach.wait_for_url(re.compile(r"/console/conversations/\d+"))
    coach.reload()

    coach.get_by_label("Text to send").fill(REPLY)
    expect(coach.locator(".js-counter")).to_contain_text("1 text")
    coach.get_by_role("button", name="Send text").click()
    expect(coach.get_by_text("Text queued.")).to_be_visible()
    deliver(engine, redis_conn)  # claimed by the dispatcher, sent by a worker, once
    assert [m.body for m in stack.outbound_to(SAM)][-1] == REPLY
    expect(messages.locator("li.theirs").last).to_contain_text(REPLY, timeout=15_000)
    sent = session.exec(select(Delivery).where(Delivery.kind == "staff")).one()
    assert wait_for(lambda: session.get(Delivery, sent.id, populate_existing=True).status
                    == "delivered", sweeping=engine)
    thread = coach.locator("#thread")
    expect(thread.locator(".from-staff").last).to_contain_text("delivered", timeout=15_000)

    box.fill("yes I'm safe, my sister is with me")
    box.press("Enter")
    expect(thread.locator(".from-them").last).to_contain_text("my sister is with me",
                                                              timeout=15_000)
    [talk] = session.exec(select(Conversation)).all()
    session.refresh(talk)
    assert talk.first_reply_at is not None and talk.waiting_since is not None
    coach.screenshot(path=shots / "conversation-answered-desktop.png", full_page=True)
    phone.screenshot(path=shots / "sandbox-phone-answered.png", full_page=True)
    print(f"\ncrisis text to the on-call SMS: {paged:.2f} s (plus up to one dispatcher interval); "
          f"to the coach's open inbox: {seen:.2f} s")
    coach.close()
    phone.close()
