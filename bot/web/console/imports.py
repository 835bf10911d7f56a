"""Enrolling a list of participants from a CSV file in the console: the page that says which
columns a file may have, the upload (checked here, enrolled by the worker, never in the
request), the progress the page polls for, and the failed rows as a file to fix and upload
again. A file uploaded twice enrolls nobody twice: numbers already in the program are skipped."""

from __future__ import annotations

from typing import Any

import redis
from flask import (
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length

from bot import web
from bot.care.programs import Catalog
from bot.delivery.queues import connect_redis, delivery_queue
from bot.participants import importing
from bot.participants.importing import Progress, Roster
from bot.store.db import session_scope
from bot.web.console import bp
from bot.web.console.auth import me, record, requires
from bot.web.console.enroll import TIME, chosen_program, humane, program_form
from bot.web.console.participant import _common_zones

MEGABYTES = importing.MAX_BYTES // (1024 * 1024)
NOT_CSV = ("{name} is not a CSV file. In Excel or Google Sheets, save or download the sheet as "
           "CSV (comma-separated values) and upload that file.")


class ImportForm(FlaskForm):
    program = SelectField("Program", choices=[], validate_choice=False)
    timezone = StringField("Time zone for rows without one",
                           validators=[InputRequired("Give a time zone."), Length(max=64)],
                           description="A row's own timezone column comes first.",
                           render_kw={"list": "zones", "autocomplete": "off",
                                      "spellcheck": "false"})
    file = FileField("CSV file", description=f"Up to {importing.MAX_ROWS:,} rows and "
                                             f"{MEGABYTES} MB.",
                     render_kw={"accept": ".csv,text/csv",
                                "data-max-bytes": str(importing.MAX_BYTES)})
    consent = BooleanField(
        "Everyone in this file has agreed to receive these texts.",
        validators=[DataRequired("Import only people who have agreed to the texts.")],
        description="Each enrollment goes in that person's consent record, your confirmation "
                    "in the audit log. They can text STOP at any time.")


def connection() -> redis.Redis:
    """The web process's Redis (shared with the health check), where imports are kept."""
    held = current_app.extensions.get("tend.redis")
    if held is None:
        held = current_app.extensions["tend.redis"] = connect_redis(web.settings())
    return held


@bp.before_app_request
def room_for_a_file() -> None:
    """The app refuses bodies larger than a webhook's; an upload here may be a whole file."""
    if request.endpoint == "console.import_participants" and request.method == "POST":
        request.max_content_length = importing.MAX_BYTES + 64 * 1024  # the form around it


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_error: Exception) -> tuple[Any, int]:
    if request.endpoint != "console.import_participants":
        return render_template("console/error.html", title="Too large",
                               message="What was sent is too large to be read."), 413
    return render_template("console/error.html", title="This file is too large",
                           message=f"A file can have up to {importing.MAX_ROWS:,} rows and "
                                   f"{MEGABYTES} MB. Split it into smaller files and upload "
                                   f"each one."), 413


def _roster(form: ImportForm, catalog: Catalog) -> Roster | None:
    """The file's rows once every field is right; None with each error on its field."""
    valid = form.validate_on_submit()
    program = chosen_program(form, catalog)
    upload: FileStorage | None = form.file.data
    problem, roster = "", None
    if not isinstance(upload, FileStorage) or not upload.filename:
        problem = "Choose the CSV file to upload."
    elif not upload.filename.lower().endswith((".csv", ".txt")):
        problem = NOT_CSV.format(name=upload.filename)
    elif len(data := upload.read(importing.MAX_BYTES + 1)) > importing.MAX_BYTES:
        problem = f"The file is larger than {MEGABYTES} MB. Split it into smaller files."
    elif program is not None:
        try:
            roster = importing.read_roster(data, program, max_rows=importing.MAX_ROWS)
        except importing.ImportFileError as exc:
            problem = f"{exc.reason[0].upper()}{exc.reason[1:]}."
    if problem:
        form.file.errors = [*form.file.errors, problem]
    if not valid or any(field.errors for field in form):
        return None
    return roster


def _start(form: ImportForm, catalog: Catalog, roster: Roster) -> str | None:
    """Hand the rows to the worker; the import's id, or None (the error is on the form)."""
    program = catalog[form.program.data or ""]
    person = me()
    upload: FileStorage = form.file.data
    try:
        run_id = importing.start_run(
            connection(), roster=roster, program=program, filename=upload.filename or "",
            default_timezone=form.timezone.data or "", staff_id=person.id if person else None)
        importing.queue_chunk(delivery_queue(web.settings(), connection()), run_id)
    except redis.RedisError:
        form.file.errors = [*form.file.errors, "The import could not be started: the queue "
                            "did not answer. Nobody was enrolled; try again in a minute."]
        return None
    with session_scope(web.engine()) as db:
        record(db, "import", detail=f"{program.name}: {len(roster.rows)} rows, import {run_id}; "
                                    f"agreement to texts confirmed by staff")
    return run_id


def status_line(run: Progress) -> str:
    """Where an import stands, in a sentence (the page and its polling show the same)."""
    if run.state == "stopped":
        return f"Stopped after {run.done:,} of {run.total:,} rows: {run.reason}"
    if run.state == "done":
        return f"Done: all {run.total:,} rows are read."
    if run.stalled and run.state == "queued":
        return ("No worker has started this import yet. The worker may not be running; "
                "whoever runs the service starts it with bot worker.")
    if run.stalled:
        return (f"This import stopped at {run.done:,} of {run.total:,} rows. Upload the same "
                f"file again: everyone already enrolled is skipped.")
    if run.state == "queued":
        return "Waiting for the worker to start…"
    return f"Enrolling: {run.done:,} of {run.total:,} rows…"


def columns(catalog: Catalog) -> list[dict[str, Any]]:
    """What each column of a file holds; a program's attributes name their program."""
    found = [
        {"name": importing.PHONE, "required": True, "program": None,
         "what": "Their mobile number, in any common format; without a country code it is "
                 "taken as a US number."},
        {"name": importing.TIMEZONE, "required": False, "program": None,
         "what": "Their time zone, like America/Chicago. Empty: the time zone chosen below."},
    ]
    for name, program in sorted(catalog.items()):
        for attr, default in program.attribute_defaults.items():
            kind = f", a local time like {default}" if TIME.fullmatch(default) else ""
            found.append({"name": attr, "required": False, "program": name,
                          "what": f"{humane(attr)} for {program.title}{kind}. Empty: the "
                                  f"program's default, {default}."})
    return found


@bp.route("/participants/import", methods=["GET", "POST"], endpoint="import_participants")
@requires("participants.enroll")
def import_participants() -> Any:
    catalog, form = program_form(ImportForm)
    if request.method == "POST" and (roster := _roster(form, catalog)) is not None and (
            run_id := _start(form, catalog, roster)):
        flash(f"The file is uploaded: {len(roster.rows):,} rows. They are being enrolled now; "
              f"this page shows how far it has got.", "success")
        return redirect(url_for("console.import_participants", run=run_id) + "#run")
    run_id = request.args.get("run", "")
    run = importing.progress(connection(), run_id) if run_id else None
    if run is not None and request.method == "GET" and run.program in catalog:
        form.program.data = run.program  # the next file is most likely for the same program
    into = catalog[run.program].title if run is not None and run.program in catalog else ""
    return render_template(
        "console/import.html", title="Import participants", form=form, run=run, into=into,
        run_id=run_id, status_line=status_line(run) if run else "", columns=columns(catalog),
        programs=sorted(catalog.items()), zones=sorted(_common_zones()),
        max_rows=importing.MAX_ROWS, unavailable=sorted(catalog.unavailable),
    ), 400 if request.method == "POST" else 200


@bp.get("/participants/import/progress", endpoint="import_progress")
@requires("participants.enroll")
def import_progress() -> Any:
    run = importing.progress(connection(), request.args.get("run", ""))
    if run is None:
        return jsonify(error="There is no such import: an import is kept for a day."), 404
    return jsonify({**run.as_json(), "message": status_line(run)})


@bp.get("/participants/import/failed.csv", endpoint="import_failed")
@requires("participants.enroll")
def import_failed() -> Any:
    """The rows that failed, with their numbers: the download is in the audit log."""
    run_id = request.args.get("run", "")
    run = importing.progress(connection(), run_id, failures=0)
    body = importing.failed_rows(connection(), run_id) if run else None
    if run is None or body is None:
        abort(404)
    with session_scope(web.engine()) as db:
        record(db, "download-import-errors", detail=f"import {run_id}: {run.failed} rows")
    return _csv(body, f"{run.program}-rows-to-fix.csv")


@bp.get("/participants/import/example.csv", endpoint="import_example")
@requires("participants.enroll")
def import_example() -> Any:
    """A header for the program's file: the columns it may have, in order."""
    program = web.programs().get(request.args.get("program", ""))
    if program is None:
        abort(404)
    return _csv(",".join(importing.columns_for(program)) + "\r\n", f"{program.name}-roster.csv")


def _csv(body: str, filename: str) -> Response:
    # The byte-order mark makes Excel read the file as UTF-8; the import passes over it.
    return Response("\ufeff" + body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
