"""Enrolling from the console: one participant with the form, or a list from a CSV file that the
worker enrolls while the page follows it; who may, and what a bad field, row or file gets."""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from freezegun import freeze_time
from rq import SimpleWorker
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from bot import create_app
from bot.delivery.queues import delivery_queue
from bot.participants import importing
from bot.settings import Settings
from bot.store.models import ConsentEvent, Delivery, Participant
from bot.store.support import AuditEvent
from tests.conftest import ROOT, TEST_DATABASE_URL, TEST_REDIS_URL, LiveServer
from tests.people.factories import TEAM, add_team
from tests.web.console.conftest import Console
from tests.web.console.test_console_browser import signed_in

# A coordinator's roster after a parenting group's first session: two good rows, one person
# twice, and four rows a person has to look at again.
ROSTER = """\
phone,timezone,wake_time,name
(415) 555-0123,America/Chicago,06:30,Ana
12,America/Chicago,,Ben
415 555 0124,Mars/Base,,Cy
+1 415 555 0125,,,Dee
415-555-0123,America/Denver,,Ana again
abc,,,Eve
415 555 0126,,7am,Fay
"""
FORM = {"phone": "(415) 555-0123", "program": "positive-parenting",
        "timezone": "America/Chicago", "attr-positive-parenting-wake_time": "06:30",
        "consent": "y"}


def participants(session: Session) -> list[Participant]:
    session.expire_all()
    return list(session.exec(select(Participant).order_by(col(Participant.id))))


def audit_of(session: Session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)))


def upload(console: Console, content: str | bytes, *, filename: str = "roster.csv",
           program: str = "positive-parenting", **fields: str) -> Any:
    body = content.encode() if isinstance(content, str) else content
    data = {"program": program, "timezone": "America/New_York", "consent": "y", **fields,
            "file": (io.BytesIO(body), filename)}
    return console.post("/console/participants/import", data,
                        content_type="multipart/form-data")


def run_id_of(response: Any) -> str:
    match = re.search(r"run=([0-9a-f]{16})", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def work(settings: Settings, connection: redis.Redis) -> None:
    """What `bot worker` does, until the queue is empty."""
    from worker import context

    context.use(settings)
    SimpleWorker([delivery_queue(settings, connection)], connection=connection).work(
        burst=True, with_scheduler=False)


def progress(console: Console, run_id: str) -> dict[str, Any]:
    response = console.get(f"/console/participants/import/progress?run={run_id}",
                           headers={"Accept": "application/json"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


# --- one participant with the form -------------------------------------------------------------


def test_a_coordinator_enrolls_a_number_typed_any_way_and_lands_on_their_page(
    console_as: Any, session: Session
) -> None:
    coordinator: Console = console_as("coordinator")
    form = coordinator.get("/console/participants/new").get_data(as_text=True)
    assert 'value="America/New_York"' in form  # the service's default zone, to start from
    assert "Positive Parenting (positive-parenting)" in form and "Medication Support" in form

    response = coordinator.post("/console/participants/new", FORM)

    [person] = participants(session)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/console/participants/{person.id}")
    assert (person.phone, person.program, person.timezone) == (
        "+14155550123", "positive-parenting", "America/Chicago")
    assert person.attributes == {"wake_time": "06:30"} and person.enrolled_via == "console"
    [consent] = session.exec(select(ConsentEvent)).all()
    assert consent.kind == "enrolled"
    welcome = session.exec(select(Delivery).where(Delivery.kind == "welcome")).all()
    assert len(welcome) == 1
    [event] = audit_of(session, "enroll")
    assert (event.participant_id, event.actor) == (person.id, TEAM["coordinator"])
    assert "0123" not in event.detail
    page = coordinator.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Participant {person.id} is enrolled in" in page


def test_each_mistake_is_shown_next_to_its_field_and_what_was_typed_stays(
    console_as: Any, session: Session
) -> None:
    coordinator: Console = console_as("coordinator")
    typed = {**FORM, "phone": "415 555 01", "timezone": "Chicago",
             "attr-positive-parenting-wake_time": "7am", "consent": ""}
    response = coordinator.post("/console/participants/new", typed)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "This number has the wrong number of digits: a US number has 10" in page
    assert 'value="415 555 01"' in page
    assert "&#39;Chicago&#39; is not a time zone" in page and 'value="Chicago"' in page
    assert "wake_time should be a local time like 07:00" in page and 'value="7am"' in page
    assert "Enroll someone only once they have agreed to the texts." in page
    assert '<option selected value="positive-parenting">' in page
    assert 'aria-invalid="true"' in page
    assert participants(session) == []


def test_a_number_already_enrolled_is_refused_with_a_link_to_them(
    console_as: Any, session: Session
) -> None:
    coordinator: Console = console_as("coordinator")
    assert coordinator.post("/console/participants/new", FORM).status_code == 302
    again = coordinator.post("/console/participants/new",
                             {**FORM, "phone": "+1 415-555-0123", "program": "daily-checkin"})
    page = again.get_data(as_text=True)
    assert again.status_code == 400
    assert 'already enrolled in positive-parenting: <a href="/console/participants/1">' in page
    assert len(participants(session)) == 1


@pytest.mark.parametrize("role", ["coach", "analyst"])
def test_coaches_and_analysts_may_neither_enroll_nor_import(
    console_as: Any, session: Session, redis_conn: redis.Redis, role: str
) -> None:
    console: Console = console_as(role)
    for path in ("/console/participants/new", "/console/participants/import",
                 "/console/participants/import/progress?run=0123456789abcdef",
                 "/console/participants/import/failed.csv?run=0123456789abcdef",
                 "/console/participants/import/example.csv?program=daily-checkin"):
        assert console.get(path).status_code == 403, path
    assert console.post("/console/participants/new", FORM).status_code == 403
    assert upload(console, ROSTER).status_code == 403
    assert participants(session) == []
    listing = console.get("/console/participants").get_data(as_text=True)
    assert "Import CSV" not in listing


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    console_as: Any, session: Session, redis_conn: redis.Redis
) -> None:
    coordinator: Console = console_as("coordinator")
    for path in ("/console/participants/new", "/console/participants/import"):
        response = coordinator.client.post(path, data=FORM)
        assert response.status_code == 400
        assert "This form has expired" in response.get_data(as_text=True)
    assert participants(session) == []
    assert redis_conn.keys("tend:import:*") == []


# --- a list from a CSV file ---------------------------------------------------------------------


def test_an_import_enrolls_the_good_rows_in_the_worker_and_reports_each_bad_one(
    console_as: Any, session: Session, settings: Settings, redis_conn: redis.Redis
) -> None:
    coordinator: Console = console_as("coordinator")
    response = upload(coordinator, ROSTER)
    assert response.status_code == 302
    run_id = run_id_of(response)
    assert participants(session) == []  # nothing in the request: the worker enrolls
    assert progress(coordinator, run_id)["state"] == "queued"

    work(settings, redis_conn)

    done = progress(coordinator, run_id)
    assert {k: done[k] for k in ("state", "total", "done", "enrolled", "skipped", "failed")} == {
        "state": "done", "total": 7, "done": 7, "enrolled": 2, "skipped": 1, "failed": 4}
    assert [(f["row"], f["phone"]) for f in done["failures"]] == [
        (3, "••"), (4, "+•••••••0124"), (7, "(no number)"), (8, "+•••••••0126")]
    reasons = {f["row"]: f["reason"] for f in done["failures"]}
    assert "wrong number of digits" in reasons[3] and "'Mars/Base' is not a time zone" in reasons[4]
    assert "not a phone number" in reasons[7] and "wake_time should be a local time" in reasons[8]
    enrolled = {p.phone: (p.timezone, p.attributes, p.enrolled_via) for p in participants(session)}
    assert enrolled == {
        "+14155550123": ("America/Chicago", {"wake_time": "06:30"}, "import"),
        "+14155550125": ("America/New_York", {}, "import"),  # the zone chosen on the form
    }
    page = coordinator.get(f"/console/participants/import?run={run_id}").get_data(as_text=True)
    assert "Done: all 7 rows are read." in page and "Rows to fix" in page
    assert "&#39;Mars/Base&#39; is not a time zone" in page
    assert "Columns the program does not use, passed over: name." in page
    [started] = audit_of(session, "import")
    assert started.actor == TEAM["coordinator"] and run_id in started.detail
    assert sorted(e.participant_id for e in audit_of(session, "enroll")) == [1, 2]
    assert {e.actor for e in audit_of(session, "enroll")} == {TEAM["coordinator"]}
    assert redis_conn.ttl(f"tend:import:{run_id}") > 86000
    assert not redis_conn.exists(f"tend:import:{run_id}:rows")  # the file itself is not kept


def test_the_failed_rows_download_as_a_file_that_can_be_fixed_and_uploaded_again(
    console_as: Any, session: Session, settings: Settings, redis_conn: redis.Redis
) -> None:
    coordinator: Console = console_as("coordinator")
    run_id = run_id_of(upload(coordinator, ROSTER))
    work(settings, redis_conn)

    download = coordinator.get(f"/console/participants/import/failed.csv?run={run_id}")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert "attachment" in download.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True).lstrip("\ufeff"))))
    assert [(r["row"], r["phone"], r["name"]) for r in rows] == [
        ("3", "12", "Ben"), ("4", "415 555 0124", "Cy"), ("7", "abc", "Eve"),
        ("8", "415 555 0126", "Fay")]
    assert all(r["error"] for r in rows)
    assert len(audit_of(session, "download-import-errors")) == 1

    fixed = download.get_data(as_text=True).replace("Mars/Base", "America/Denver").replace(
        ",7am,", ",07:00,")
    again = run_id_of(upload(coordinator, fixed))
    work(settings, redis_conn)
    result = progress(coordinator, again)
    assert (result["enrolled"], result["failed"]) == (2, 2)
    assert "Columns" not in str(result)  # the row and error columns are passed over quietly
    assert len(participants(session)) == 4


def test_uploading_the_same_file_again_skips_everyone_already_enrolled(
    console_as: Any, session: Session, settings: Settings, redis_conn: redis.Redis
) -> None:
    coordinator: Console = console_as("coordinator")
    run_id_of(upload(coordinator, ROSTER))
    work(settings, redis_conn)
    again = run_id_of(upload(coordinator, ROSTER))
    work(settings, redis_conn)
    result = progress(coordinator, again)
    assert (result["enrolled"], result["skipped"], result["failed"]) == (0, 3, 4)
    assert len(participants(session)) == 2


def test_the_progress_counts_rows_as_the_worker_goes_and_sends_wait_no_longer_than_a_chunk(
    console_as: Any, session: Session, settings: Settings, redis_conn: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from worker import context, jobs

    monkeypatch.setattr(importing, "CHUNK_ROWS", 3)
    coordinator: Console = console_as("coordinator")
    numbers = "\n".join(f"415 555 01{n:02}" for n in range(10, 17))
    run_id = run_id_of(upload(coordinator, "phone\n" + numbers + "\n"))
    context.use(settings)
    queue = delivery_queue(settings, redis_conn)
    [job] = queue.get_jobs()
    assert job.func_name == "worker.jobs.import_participants" and job.args == (run_id, 0)

    jobs.import_participants(*job.args)  # the worker's first turn

    halfway = progress(coordinator, run_id)
    assert (halfway["state"], halfway["done"], halfway["total"]) == ("running", 3, 7)
    assert halfway["message"] == "Enrolling: 3 of 7 rows…"
    assert [j.args for j in queue.get_jobs()][-1] == (run_id, 3)  # the rest waits its turn
    assert len(participants(session)) == 3
    queue.empty()
    jobs.import_participants(run_id, 0)  # a repeat of a turn already taken does nothing
    assert progress(coordinator, run_id)["done"] == 3 and queue.count == 0


def test_an_import_no_worker_has_taken_up_says_so_after_two_minutes(
    console_as: Any, redis_conn: redis.Redis
) -> None:
    coordinator: Console = console_as("coordinator")
    run_id = run_id_of(upload(coordinator, ROSTER))
    assert not progress(coordinator, run_id)["stalled"]
    with freeze_time(datetime.now(UTC) + timedelta(minutes=3)):
        waiting = progress(coordinator, run_id)
    assert waiting["stalled"] and waiting["state"] == "queued"
    assert waiting["message"].startswith("No worker has started this import yet.")


@pytest.mark.parametrize(("content", "filename", "says"), [
    (b"PK\x03\x04\x14\x00\x06\x00", "roster.csv", "The file is a spreadsheet"),
    (ROSTER, "roster.xlsx", "roster.xlsx is not a CSV file"),
    ("number,timezone\n4155550123,America/Chicago\n", "roster.csv",
     "The file needs a &#39;phone&#39; column"),
    ("4155550123,America/Chicago\n", "roster.csv", "The file&#39;s first row should name"),
    ("phone,timezone\n", "roster.csv", "The file has no rows below its header"),
    ("", "roster.csv", "The file is empty"),
    ("phone\n" + "4155550123\n" * 5001, "roster.csv", "The file has 5,001 rows; at most 5,000"),
])
def test_a_file_that_cannot_be_imported_is_refused_with_what_to_do(
    console_as: Any, session: Session, redis_conn: redis.Redis, content: str | bytes,
    filename: str, says: str,
) -> None:
    coordinator: Console = console_as("coordinator")
    response = upload(coordinator, content, filename=filename, timezone="America/Chicago")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert says in page, page[page.find('id="file-error"') - 200:][:600]
    assert 'value="America/Chicago"' in page  # the rest of the form as it was
    assert redis_conn.keys("tend:import:*") == [] and participants(session) == []


def test_a_file_over_two_megabytes_is_refused_before_it_is_read(
    console_as: Any, redis_conn: redis.Redis
) -> None:
    coordinator: Console = console_as("coordinator")
    response = upload(coordinator, "phone\n" + "4155550123," + "x" * (3 * 1024 * 1024))
    assert response.status_code == 413
    assert "This file is too large" in response.get_data(as_text=True)
    assert redis_conn.keys("tend:import:*") == []


def test_the_page_names_the_columns_and_offers_a_header_for_each_program(
    console_as: Any, redis_conn: redis.Redis
) -> None:
    coordinator: Console = console_as("coordinator")
    page = coordinator.get("/console/participants/import").get_data(as_text=True)
    assert 'data-program="medication-adherence"' in page and ">dose_time" in page
    assert "example.csv?program=positive-parenting" in page
    example = coordinator.get("/console/participants/import/example.csv?program="
                              "medication-adherence")
    assert example.get_data(as_text=True) == "\ufeffphone,timezone,dose_time\r\n"
    assert coordinator.get("/console/participants/import/example.csv?program=nope"
                           ).status_code == 404
    gone = coordinator.get("/console/participants/import?run=0123456789abcdef")
    assert "This import is no longer kept" in gone.get_data(as_text=True)
    listing = coordinator.get("/console/participants").get_data(as_text=True)
    assert 'href="/console/participants/new"' in listing and "Import CSV" in listing


# --- in a real browser ------------------------------------------------------------------------


@pytest.fixture
def live(pg_engine: Engine, redis_conn: redis.Redis, tmp_path: Path) -> Iterator[dict[str, Any]]:
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with pg_engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    settings = Settings(
        env="test", testing=True, database_url=TEST_DATABASE_URL, redis_url=TEST_REDIS_URL,
        narratives_dir=ROOT / "narratives", instance_dir=tmp_path / "instance",
    ).validated()
    with Session(pg_engine, expire_on_commit=False) as session:
        add_team(session)
    server = LiveServer(create_app(settings))
    yield {"url": server.url, "settings": settings}
    server.stop()


@pytest.mark.browser
def test_in_a_browser_an_import_shows_its_progress_to_the_end_and_lists_the_bad_row(
    browser: Any, live: dict[str, Any], redis_conn: redis.Redis, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    shots = Path(os.environ.get("TEND_SCREENSHOTS") or tmp_path)  # kept when it is set

    roster = tmp_path / "roster.csv"
    roster.write_text("phone,wake_time\n415 555 0123,06:30\n415 555 0124,\n"
                      "415 555 01,\n415 555 0125,\n", encoding="utf-8")
    page = signed_in(browser, live["url"], "coordinator", {"width": 1280, "height": 900})
    page.goto(f"{live['url']}/console/participants")
    page.get_by_role("link", name="Import CSV").click()
    page.get_by_label("Program").select_option("positive-parenting")
    page.screenshot(path=shots / "import.png", full_page=True)
    page.get_by_label("CSV file").set_input_files(str(roster))
    page.get_by_label("Everyone in this file has agreed").check()
    page.get_by_role("button", name="Upload and enroll").click()
    expect(page.locator("#run-status")).to_contain_text("Waiting for the worker")

    work(live["settings"], redis_conn)

    expect(page.locator("#run-status")).to_have_text("Done: all 4 rows are read.")
    assert page.locator("progress").evaluate("bar => [bar.value, bar.max]") == [4, 4]
    failures = page.locator("[data-part=failure-rows] tr")
    expect(failures).to_have_count(1)
    assert "wrong number of digits" in failures.first.inner_text()
    assert failures.first.locator("td").first.inner_text() == "4"
    expect(page.get_by_role("link", name="Download the rows that failed as CSV")
           ).to_be_visible()
    page.screenshot(path=shots / "import-done.png", full_page=True)

    page.goto(f"{live['url']}/console/participants/new")
    page.get_by_label("Program").select_option("medication-adherence")
    expect(page.get_by_label("Dose time")).to_be_visible()
    expect(page.get_by_label("Wake time")).to_be_hidden()
    page.get_by_label("Phone number").fill("415 555 01")
    page.get_by_label("Dose time").fill("8pm")
    page.get_by_label("They have agreed").check()
    page.get_by_role("button", name="Enroll").click()
    expect(page.get_by_text("This number has the wrong number of digits")).to_be_visible()
    expect(page.get_by_label("Phone number")).to_have_value("415 555 01")
    page.screenshot(path=shots / "enroll-errors.png", full_page=True)
    page.get_by_label("Phone number").fill("(415) 555-0199")
    page.get_by_label("Dose time").fill("20:00")
    page.get_by_role("button", name="Enroll").click()
    expect(page.get_by_text("is enrolled in")).to_be_visible()

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    for name, path in (("enroll", "new"), ("import", "import")):
        page.goto(f"{live['url']}/console/participants/{path}")
        page.screenshot(path=shots / f"{name}-phone.png", full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the {name} page is {overflow}px wider than a phone"
    page.close()
