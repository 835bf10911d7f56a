"""Operator logs: one JSON object a line from the real processes, each naming its request, job or
tick, and never a participant's number or a message's text."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlmodel import select

from bot.care.programs import load_programs
from bot.logs import JsonFormatter, LogfmtFormatter, RedactingFilter, TextFormatter, request_id
from bot.participants.enrollment import enroll
from bot.store.db import session_scope
from bot.store.models import Delivery, DeliveryStatus, WorkerHeartbeat
from tests.conftest import ROOT, wait_for

PHONE = "+14155550123"  # Maya, who texts the study; her number must never reach a log
DIGITS = PHONE.removeprefix("+1")
MASKED = "+•••••••0123"
FIELDS = {"time", "level", "logger", "message"}


def bot(command: list[str], stack, log: Path) -> subprocess.Popen[bytes]:
    """`bot COMMAND` as the Procfile runs it, logging JSON to `log` (stdout and stderr)."""
    settings = stack.settings
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "TEND_ENV": "test",
        "LOG_FORMAT": "json",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "TWILIO_API_BASE_URL": settings.twilio_api_base_url,
        "PUBLIC_BASE_URL": settings.public_base_url,
        "NARRATIVES_DIR": str(settings.narratives_dir),
        "TEND_INSTANCE_DIR": str(settings.instance_dir),
        "QUEUE_NAME": settings.queue_name,
        "QUIET_HOURS_START": "08:00",
        "QUIET_HOURS_END": "08:00",
        "DISPATCH_INTERVAL_SECONDS": "0.2",
    }
    with log.open("wb") as out:  # a file: a full pipe would block the process
        return subprocess.Popen([str(Path(sys.executable).with_name("bot")), *command], env=env,
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def lines(log: Path) -> list[dict]:
    """Every line of `log`, each of which must be one JSON object."""
    raw = log.read_text(encoding="utf-8")
    assert raw.strip(), "the process logged nothing"
    assert DIGITS not in raw
    return [json.loads(line) for line in raw.splitlines()]


def welcome(engine) -> Delivery:
    with session_scope(engine) as session:
        return session.exec(select(Delivery).where(Delivery.kind == "welcome")).one()


def test_the_dispatcher_and_a_worker_log_json_lines_without_her_number_or_the_text(
    stack, engine, tmp_path: Path
):
    with session_scope(engine) as session:
        enroll(session=session, phone=PHONE, program=load_programs(stack.settings.narratives_dir)
               ["daily-checkin"], timezone="UTC", via="cli")
    # The provider refuses the welcome with an error that names her number, as Twilio's do.
    stack.faults([{"status": 400, "code": 21211,
                   "message": f"The 'To' number {PHONE} is not a valid phone number."}], to=PHONE)

    dispatcher = bot(["dispatcher"], stack, tmp_path / "dispatcher.log")
    try:
        assert wait_for(lambda: welcome(engine).status == DeliveryStatus.QUEUED, timeout=30)
    finally:
        dispatcher.send_signal(signal.SIGTERM)
        dispatcher.wait(timeout=30)
    worker = bot(["worker", "--burst"], stack, tmp_path / "worker.log")
    assert worker.wait(timeout=60) == 0
    sent = welcome(engine)
    assert sent.status == DeliveryStatus.FAILED and sent.body

    dispatched = lines(tmp_path / "dispatcher.log")
    assert all(set(line) >= FIELDS for line in dispatched)
    [claim] = [line for line in dispatched if line["message"].startswith("dispatched")]
    assert claim["level"] == "info" and claim["logger"] == "worker.dispatcher"
    assert isinstance(claim["tick"], int)
    with session_scope(engine) as session:  # /healthz reads its ticks from here
        beats = session.exec(select(WorkerHeartbeat.worker_id)).all()
    assert any(worker_id.startswith("dispatcher:") for worker_id in beats)

    worked = lines(tmp_path / "worker.log")
    assert all(set(line) >= FIELDS for line in worked)
    assert sent.body not in (tmp_path / "worker.log").read_text(encoding="utf-8")
    [refusal] = [line for line in worked if "provider said" in line["message"]]
    assert MASKED in refusal["message"]  # masked on the way out, not merely absent
    [batch] = [line for line in worked if line["message"].startswith("batch of 1")]
    assert refusal["job_id"] == batch["job_id"] and batch["job_id"]


def test_a_request_carries_the_routers_request_id_into_its_logs_and_its_response(
    client, caplog
):
    given = str(uuid.uuid4())
    with caplog.at_level(logging.WARNING):
        response = client.post("/twilio/sms", data={"From": PHONE, "Body": "hi"},
                               headers={"X-Request-ID": given})
    assert response.status_code == 403  # unsigned
    assert response.headers["X-Request-ID"] == given
    [refusal] = [r for r in caplog.records if "signature" in r.getMessage()]
    assert refusal.tend_context["request_id"] == given


def test_a_request_without_an_id_gets_one_of_its_own(client):
    first = client.get("/healthz?check=web").headers["X-Request-ID"]
    second = client.get("/healthz?check=web").headers["X-Request-ID"]
    assert first != second and uuid.UUID(first)
    odd = client.get("/healthz?check=web", headers={"X-Request-ID": "a b\"c"})
    assert odd.headers["X-Request-ID"] != "a b\"c"


@pytest.mark.parametrize("header", ["", "x" * 201, "id with spaces", "<script>"])
def test_only_an_id_the_router_could_have_set_is_kept(header: str):
    assert request_id(header) != header


def crafted_record() -> logging.LogRecord:
    try:
        raise ValueError(f"could not enroll {PHONE}")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("bot.test", logging.ERROR, __file__, 1,
                               "text from %s (call 415-555-0123 or (415) 555 0123)", (PHONE,),
                               exc_info)
    record.tend_context = {"request_id": "req-1"}
    return record


def test_the_filter_masks_every_number_in_a_record_and_its_traceback():
    record = crafted_record()
    assert RedactingFilter().filter(record)
    shown = record.getMessage() + (record.exc_text or "")
    assert DIGITS not in shown and "555-0123" not in shown and "555 0123" not in shown
    assert MASKED in record.getMessage() and MASKED in (record.exc_text or "")


def test_a_json_line_holds_the_fields_and_no_number():
    line = JsonFormatter().format(crafted_record())
    assert "\n" not in line
    fields = json.loads(line)
    assert FIELDS | {"request_id", "exception"} <= set(fields)
    assert fields["level"] == "error" and fields["logger"] == "bot.test"
    assert fields["time"].endswith("Z")
    assert DIGITS not in line and "555-0123" not in line
    assert MASKED in fields["message"] and "ValueError" in fields["exception"]


def test_a_logfmt_line_is_one_line_of_quoted_fields():
    line = LogfmtFormatter().format(crafted_record())
    assert "\n" not in line and DIGITS not in line
    assert line.startswith("time=") and " level=error logger=bot.test message=\"" in line
    assert "request_id=req-1" in line


def test_a_text_line_reads_in_a_terminal():
    shown = TextFormatter().format(crafted_record())
    first = shown.splitlines()[0]
    assert " error bot.test text from " in first and first.endswith("[request_id=req-1]")
    assert "Traceback" in shown and DIGITS not in shown


def test_the_log_format_is_a_setting_that_refuses_what_it_cannot_write():
    from bot.settings import Settings, SettingsError

    assert Settings.from_env({"LOG_FORMAT": " JSON "}).log_format == "json"
    with pytest.raises(SettingsError, match="LOG_FORMAT must be json, logfmt or text, not 'xml'"):
        Settings.from_env({"LOG_FORMAT": "xml"})
