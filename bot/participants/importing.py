"""Enrolling participants from a CSV file: the columns a file may have, each row checked and
enrolled on its own (a bad row never stops the good ones, a number already in the program is
skipped), and an import's progress and failed rows, kept in Redis for a day.

`bot import` enrolls the rows in its own process; the console hands a file to the worker, which
enrolls it a chunk of rows at a time so that deliveries queued meanwhile are not held up. The
failed rows keep every cell of the file, so they can be fixed and uploaded again.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis
from rq import Queue
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from bot.care.programs import Program
from bot.care.timing import TimezoneError
from bot.clock import now
from bot.participants.enrollment import EnrollmentError, enroll, find_by_phone
from bot.participants.phones import PhoneNumberError, mask, normalize
from bot.store.db import session_scope
from bot.store.models import Participant
from bot.store.support import Staff

log = logging.getLogger(__name__)

PHONE, TIMEZONE = "phone", "timezone"
REPORT_COLUMNS = ("row", "error")  # added to a failed-rows file, passed over when it comes back
MAX_ROWS = 5000
MAX_BYTES = 2 * 1024 * 1024
KEEP_SECONDS = 86400  # an import's progress and failed rows (with their numbers) last a day
CHUNK_ROWS = 100  # rows a worker job enrolls before the deliveries behind it get their turn
STALLED_SECONDS = 120  # a started import that has not moved for this long has stopped
RUN_ID = re.compile(r"[0-9a-f]{16}")
Audit = Callable[..., object]  # bot.people.audit.record, or None where nobody signed in


class ImportFileError(ValueError):
    """A file that cannot be imported at all, with the row (1: the header) and why."""

    def __init__(self, reason: str, row: int = 1) -> None:
        super().__init__(reason)
        self.reason, self.row = reason, row


@dataclass(frozen=True)
class Row:
    number: int  # the row as a spreadsheet numbers it: the header is row 1
    values: tuple[str, ...]  # every cell, in the file's column order


@dataclass(frozen=True)
class Roster:
    """A file's rows: `header` as written, `ignored` the columns its program does not use."""

    header: tuple[str, ...]
    rows: list[Row]
    ignored: tuple[str, ...] = ()

    def cells(self, row: Row) -> dict[str, str]:
        names = [name.strip().lower() for name in self.header]
        return {name: value.strip() for name, value in zip(names, row.values, strict=False)
                if name}


def columns_for(program: Program) -> list[str]:
    """The columns a file for `program` may have: phone first, then the optional ones."""
    return [PHONE, TIMEZONE, *program.attribute_defaults]


def _text(data: bytes) -> str:
    if data[:4] == b"PK\x03\x04" or b"\x00" in data[:4096]:
        raise ImportFileError("the file is a spreadsheet (or another kind of file), not CSV: "
                              "save it as CSV (comma-separated values) and use that file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:  # an older spreadsheet's own encoding; numbers are plain digits
        return data.decode("cp1252", errors="replace")


def read_roster(data: bytes, program: Program, *, max_rows: int | None = None) -> Roster:
    """The rows of a CSV file for `program`; ImportFileError when the file as a whole is wrong.
    Blank rows are passed over (their numbers still count, as in the spreadsheet)."""
    text = _text(data)
    first = text.split("\n", 1)[0]
    delimiter = next((d for d in (";", "\t") if d in first and "," not in first), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = tuple(cell.strip() for cell in next(reader, []))
        names = [name.lower() for name in header]
        if not any(names):
            raise ImportFileError("the file is empty: its first row should name the columns")
        if PHONE not in names and any(sum(c.isdigit() for c in name) >= 7 for name in names):
            raise ImportFileError(f"the file's first row should name the columns "
                                  f"({', '.join(columns_for(program))}) but holds a number: "
                                  f"add a row above it naming the columns")
        if PHONE not in names:
            raise ImportFileError(f"the file needs a 'phone' column: its first row names the "
                                  f"columns, and this one has {', '.join(filter(None, header))}")
        if twice := sorted({name for name in names if name and names.count(name) > 1}):
            raise ImportFileError(f"the file has the column {twice[0]!r} twice")
        rows = [Row(number, tuple(record)) for number, record in enumerate(reader, start=2)
                if any(cell.strip() for cell in record)]
    except csv.Error as exc:
        raise ImportFileError(f"the file is not readable as CSV from row {reader.line_num} "
                              f"({exc})", reader.line_num) from None
    if not rows:
        raise ImportFileError("the file has no rows below its header")
    if max_rows is not None and len(rows) > max_rows:
        raise ImportFileError(f"the file has {len(rows):,} rows; at most {max_rows:,} can be "
                              f"imported at once: split it into smaller files")
    known = set(columns_for(program)) | set(REPORT_COLUMNS)
    ignored = tuple(h for h, name in zip(header, names, strict=True) if name and name not in known)
    return Roster(header, rows, ignored)


@dataclass(frozen=True)
class Outcome:
    kind: str  # enrolled, skipped (already in this program) or failed
    reason: str = ""
    participant_id: int | None = None


def enroll_row(*, engine: Engine, program: Program, roster: Roster, row: Row,
               default_timezone: str, via: str = "import",
               then: Callable[[Session, Participant], object] | None = None) -> Outcome:
    """Enroll one row in its own transaction; `then` runs in it (the audit log)."""
    cells = roster.cells(row)
    attributes = {name: cells[name] for name in program.attribute_defaults if cells.get(name)}
    try:
        number = normalize(cells.get(PHONE, ""))
        with session_scope(engine) as session:
            if skipped := _already_in(session, program, number):
                return skipped
            participant = enroll(session=session, phone=number, program=program, via=via,
                                 timezone=cells.get(TIMEZONE) or default_timezone,
                                 attributes=attributes)
            if then is not None:
                then(session, participant)
            return Outcome("enrolled", participant_id=participant.id)
    except (PhoneNumberError, TimezoneError, EnrollmentError) as exc:
        return Outcome("failed", str(exc))
    except IntegrityError:  # the same number enrolled at this very moment by someone else
        with session_scope(engine) as session:
            return _already_in(session, program, number) or Outcome(
                "failed", f"{mask(number)} was just enrolled in another program")
    except SQLAlchemyError:
        log.exception("row %d of an import could not be saved", row.number)
        return Outcome("failed", "could not be saved just now (the database did not answer): "
                                 "try this row again later")


def _already_in(session: Session, program: Program, number: str) -> Outcome | None:
    existing = find_by_phone(session=session, phone=number)
    if existing is None or existing.program != program.name:
        return None  # not enrolled, or in another program: enroll() says so
    return Outcome("skipped", f"already enrolled (participant {existing.id})", existing.id)


def failed_rows_csv(header: Sequence[str],
                    failures: Iterable[tuple[int, Sequence[str], str]]) -> str:
    """The rows that failed, as the file had them, between their row number and the reason:
    fixed, the file can be uploaded again as it is."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([REPORT_COLUMNS[0], *header, REPORT_COLUMNS[1]])
    for number, values, reason in failures:
        padding = [""] * (len(header) - len(values))
        writer.writerow([number, *values, *padding, reason])
    return out.getvalue()


# --- an import the worker runs, its progress in Redis -----------------------------------------


def _key(run_id: str, part: str = "") -> str:
    return f"tend:import:{run_id}{part}"


def start_run(connection: redis.Redis, *, roster: Roster, program: Program, filename: str,
              default_timezone: str, staff_id: int | None = None) -> str:
    """Keep a file's rows for the worker; returns the import's id (random: it names a page)."""
    run_id = secrets.token_hex(8)
    moment = now().isoformat()
    pipe = connection.pipeline()
    pipe.hset(_key(run_id), mapping={
        "program": program.name, "filename": filename[:120], "header": json.dumps(roster.header),
        "ignored": json.dumps(roster.ignored), "timezone": default_timezone,
        "staff_id": staff_id or "", "total": len(roster.rows), "done": 0, "enrolled": 0,
        "skipped": 0, "failed": 0, "state": "queued", "reason": "", "created_at": moment,
        "updated_at": moment,
    })
    pipe.rpush(_key(run_id, ":rows"), *(json.dumps([r.number, r.values]) for r in roster.rows))
    for part in ("", ":rows"):
        pipe.expire(_key(run_id, part), KEEP_SECONDS)
    pipe.execute()
    return run_id


def queue_chunk(queue: Queue, run_id: str, start: int = 0) -> None:
    """Put the next chunk of an import on the worker's queue, behind what is already waiting.
    The job is named, not imported: the domain never imports the worker."""
    queue.enqueue("worker.jobs.import_participants", run_id, start, result_ttl=0,
                  failure_ttl=KEEP_SECONDS, job_timeout=600)


def _fields(connection: redis.Redis, run_id: str) -> dict[str, str]:
    if not RUN_ID.fullmatch(run_id):
        return {}
    raw: Mapping[bytes, bytes] = connection.hgetall(_key(run_id))  # type: ignore[assignment]
    return {k.decode(): v.decode() for k, v in raw.items()}


def run_chunk(*, connection: redis.Redis, engine: Engine, programs: Mapping[str, Program],
              run_id: str, start: int, audit: Audit | None = None) -> int | None:
    """Enroll a chunk of an import's rows from row index `start`; the index to go on from, or
    None when the import is finished, gone, or another job has already done these rows."""
    fields = _fields(connection, run_id)
    if not fields or fields["state"] in ("done", "stopped") or int(fields["done"]) != start:
        return None
    program = programs.get(fields["program"])
    if program is None:
        _update(connection, run_id, state="stopped", reason=(
            f"the program {fields['program']} cannot be loaded right now; whoever edits the "
            f"programs can see why with bot check. Upload the file again once it is fixed."))
        return None
    header = tuple(json.loads(fields["header"]))
    roster = Roster(header, [Row(n, tuple(v)) for n, v in (
        json.loads(item) for item in connection.lrange(_key(run_id, ":rows"), start,
                                                       start + CHUNK_ROWS - 1))])  # type: ignore[union-attr]
    _update(connection, run_id, state="running")
    then = _auditor(audit, run_id, fields["staff_id"])
    for row in roster.rows:
        outcome = enroll_row(engine=engine, program=program, roster=roster, row=row,
                             default_timezone=fields["timezone"], then=then)
        pipe = connection.pipeline()
        pipe.hincrby(_key(run_id), "done", 1)
        pipe.hincrby(_key(run_id), outcome.kind, 1)
        if outcome.kind == "failed":
            pipe.rpush(_key(run_id, ":failed"), json.dumps([row.number, row.values,
                                                           outcome.reason]))
            pipe.expire(_key(run_id, ":failed"), KEEP_SECONDS)
        pipe.hset(_key(run_id), "updated_at", now().isoformat())
        pipe.execute()
    following = start + len(roster.rows)
    if not roster.rows:  # the rows outlived their day, or Redis lost them
        _update(connection, run_id, state="stopped", reason="the file's rows are no longer "
                "kept; upload it again (everyone already enrolled is skipped)")
        return None
    if following >= int(fields["total"]):
        _update(connection, run_id, state="done")
        connection.delete(_key(run_id, ":rows"))
        return None
    return following


def _auditor(audit: Audit | None, run_id: str, staff_id: str
             ) -> Callable[[Session, Participant], object] | None:
    if audit is None:
        return None

    def record(session: Session, participant: Participant) -> object:
        person = session.get(Staff, int(staff_id)) if staff_id else None
        return audit(session, staff=person, action="enroll", participant_id=participant.id,
                     detail=f"{participant.program}; import {run_id}", actor=None)

    return record


def _update(connection: redis.Redis, run_id: str, **values: str) -> None:
    connection.hset(_key(run_id), mapping={**values, "updated_at": now().isoformat()})


@dataclass(frozen=True)
class Failure:
    row: int
    phone: str  # masked
    reason: str


@dataclass
class Progress:
    """Where an import stands, as the console shows it."""

    run_id: str
    program: str
    filename: str
    state: str  # queued, running, done, stopped
    total: int
    done: int
    enrolled: int
    skipped: int
    failed: int
    reason: str
    ignored: list[str]
    updated_at: datetime
    failures: list[Failure] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "stopped")

    @property
    def stalled(self) -> bool:
        """Started or queued, and nothing has moved for a while: the worker stopped or is gone."""
        idle = (now() - self.updated_at).total_seconds()
        return not self.finished and idle > STALLED_SECONDS

    def as_json(self) -> dict[str, Any]:
        keys = ("run_id", "program", "state", "total", "done", "enrolled", "skipped", "failed",
                "reason")
        return {**{k: getattr(self, k) for k in keys}, "finished": self.finished,
                "stalled": self.stalled, "failures": [vars(f) for f in self.failures]}


def progress(connection: redis.Redis, run_id: str, *, failures: int = 200) -> Progress | None:
    """An import's progress, with its first `failures` failed rows once it has finished."""
    fields = _fields(connection, run_id)
    if not fields:
        return None
    found = Progress(
        run_id=run_id, program=fields["program"], filename=fields["filename"],
        state=fields["state"], reason=fields["reason"], ignored=json.loads(fields["ignored"]),
        updated_at=datetime.fromisoformat(fields["updated_at"]),
        **{k: int(fields[k]) for k in ("total", "done", "enrolled", "skipped", "failed")},
    )
    if found.finished and failures:
        header = [name.strip().lower() for name in json.loads(fields["header"])]
        at = header.index(PHONE)
        for number, values, reason in _failed(connection, run_id, failures):
            found.failures.append(Failure(number, _shown(values[at] if at < len(values) else ""),
                                          reason))
    return found


def _shown(phone: str) -> str:
    """A row's number masked as the console shows every number (+•••••••0123), if it is one."""
    if not any(c.isdigit() for c in phone):
        return "(no number)"
    try:
        return mask(normalize(phone))
    except PhoneNumberError:
        return mask(phone)


def _failed(connection: redis.Redis, run_id: str, limit: int = -1
            ) -> list[tuple[int, list[str], str]]:
    items = connection.lrange(_key(run_id, ":failed"), 0, limit - 1 if limit > 0 else -1)
    return [tuple(json.loads(item)) for item in items]  # type: ignore[union-attr, misc]


def failed_rows(connection: redis.Redis, run_id: str) -> str | None:
    """Every failed row of an import as a CSV file to fix and upload again; None if gone."""
    fields = _fields(connection, run_id)
    if not fields:
        return None
    return failed_rows_csv(tuple(json.loads(fields["header"])), _failed(connection, run_id))
