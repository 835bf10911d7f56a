"""Enrolling one participant from the console: a number typed any common way, a program, a
time zone and the program's attributes, each checked and its error shown next to it. What was
typed stays in the form until it is right; the enrollment is in the consent record and the
audit log."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from flask import flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length

from bot import web
from bot.care.programs import Catalog, Program
from bot.care.timing import TimezoneError, zone
from bot.participants.enrollment import EnrollmentError, check_attributes, enroll, find_by_phone
from bot.participants.phones import PhoneNumberError, mask, normalize
from bot.store.db import session_scope
from bot.web.console import bp
from bot.web.console.auth import record, requires
from bot.web.console.participant import _common_zones

F = TypeVar("F", bound=FlaskForm)
TIME = re.compile(r"\d{1,2}:\d{2}")  # an attribute whose default is a time takes a time
PHONE_HINT = ("Any common format: (415) 555-0123, 415.555.0123, +44 20 7946 0958. A number "
              "without a country code is taken as a US number.")


class EnrollForm(FlaskForm):
    """Phone, program and time zone; each program's attributes come as attr-<program>-<name>."""

    phone = StringField("Phone number", description=PHONE_HINT,
                        validators=[InputRequired("Type the participant's phone number."),
                                    Length(max=40)],
                        render_kw={"inputmode": "tel", "autocomplete": "off", "autofocus": True,
                                   "spellcheck": "false"})
    program = SelectField("Program", choices=[], validate_choice=False)
    timezone = StringField("Time zone", validators=[InputRequired("Give their time zone."),
                                                    Length(max=64)],
                           description="Where they live, as an IANA name like America/Chicago: "
                                       "their messages follow their local time.",
                           render_kw={"list": "zones", "autocomplete": "off",
                                      "spellcheck": "false"})
    consent = BooleanField(
        "They have agreed to receive these texts.",
        validators=[DataRequired("Enroll someone only once they have agreed to the texts.")],
        description="Their enrollment goes in their consent record, your confirmation in the "
                    "audit log. They can text STOP at any time.")


def phone_problem(typed: str, error: PhoneNumberError) -> str:
    """The reason in words for the person who typed the number: it is in front of them, so the
    message names it "this number" rather than masked."""
    reason = str(error)
    shown = mask(typed.strip())
    if shown and reason.startswith(shown):
        reason = "this number" + reason[len(shown):]
    elif reason.startswith("that "):
        reason = "this" + reason[len("that"):]
    if "number of digits" in reason:
        reason += ": a US number has 10 digits with its area code; a number elsewhere starts "
        reason += "with + and its country code"
    return f"{reason[0].upper()}{reason[1:]}."


def program_choices(catalog: Catalog) -> list[tuple[str, str]]:
    return [(name, f"{program.title} ({name})") for name, program in sorted(catalog.items())]


def program_form(form_class: type[F]) -> tuple[Catalog, F]:
    """The live programs, and a form that chooses among them (on a first visit: the program
    the address names, and the service's default time zone)."""
    catalog = web.programs()
    form: Any = form_class()
    form.program.choices = program_choices(catalog)
    if request.method == "GET":
        form.timezone.data = web.settings().default_timezone
        form.program.data = request.args.get("program") or form.program.data
    return catalog, form


def chosen_program(form: Any, catalog: Catalog) -> Program | None:
    """The program and time zone a posted form chose, each error on its field."""
    program = catalog.get(form.program.data or "")
    if program is None:
        form.program.errors = [*form.program.errors, "Choose one of the programs listed."]
    if form.timezone.data and not form.timezone.errors:
        try:
            form.timezone.data = zone(form.timezone.data.strip()).key
        except TimezoneError as exc:
            form.timezone.errors = [*form.timezone.errors, f"{exc}."]
    return program


def humane(name: str) -> str:
    """wake_time -> Wake time."""
    return name.replace("_", " ").strip().capitalize()


def attribute_groups(catalog: Catalog, form_data: Any) -> list[dict[str, Any]]:
    """Each program's attribute fields with what was typed in them (empty: its default)."""
    return [
        {"program": name, "title": program.title, "fields": [
            {"id": f"attr-{name}-{attr}", "name": attr, "label": humane(attr), "default": default,
             "is_time": bool(TIME.fullmatch(default)), "error": "",
             "value": form_data.get(f"attr-{name}-{attr}", "").strip()}
            for attr, default in program.attribute_defaults.items()
        ]}
        for name, program in sorted(catalog.items()) if program.attribute_defaults
    ]


def _check(form: EnrollForm, catalog: Catalog, groups: list[dict[str, Any]]
           ) -> tuple[str, Program, dict[str, str]] | None:
    """The number in E.164, the program and its attributes; None with every error on its
    field, all at once rather than one per try."""
    valid = form.validate_on_submit()
    number, program = "", chosen_program(form, catalog)
    if not form.phone.errors:
        try:
            number = normalize(form.phone.data or "")
        except PhoneNumberError as exc:
            form.phone.errors = [*form.phone.errors, phone_problem(form.phone.data or "", exc)]
    attributes: dict[str, str] = {}
    for group in groups:
        if program is None or group["program"] != program.name:
            continue
        for item in group["fields"]:
            try:
                attributes |= check_attributes(program, {item["name"]: item["value"]}) if (
                    item["value"]) else {}
            except EnrollmentError as exc:
                item["error"] = f"{exc}."
    wrong = any(field.errors for field in form) or any(
        item["error"] for group in groups for item in group["fields"])
    if not valid or wrong or program is None:
        return None
    return number, program, attributes


def _already_enrolled(form: EnrollForm, number: str) -> bool:
    with session_scope(web.engine()) as db:
        existing = find_by_phone(session=db, phone=number)
    if existing is None:
        return False
    link = url_for("console.participant", participant_id=existing.id)
    form.phone.errors = [*form.phone.errors, Markup(
        f'This number is already enrolled in {escape(existing.program)}: '
        f'<a href="{link}">participant {existing.id}</a>.')]
    return True


@bp.route("/participants/new", methods=["GET", "POST"], endpoint="enroll")
@requires("participants.enroll")
def enroll_participant() -> Any:
    catalog, form = program_form(EnrollForm)
    groups = attribute_groups(catalog, request.form)
    checked = _check(form, catalog, groups) if request.method == "POST" else None
    if checked and not _already_enrolled(form, checked[0]):
        number, program, attributes = checked
        try:
            with session_scope(web.engine()) as db:
                participant = enroll(session=db, phone=number, program=program, via="console",
                                     timezone=form.timezone.data or "", attributes=attributes)
                record(db, "enroll", participant.id,
                       f"{program.name}; agreement to texts confirmed by staff")
        except EnrollmentError as exc:  # enrolled a moment ago by someone else
            form.phone.errors = [*form.phone.errors, f"{exc}."]
        else:
            flash(f"Participant {participant.id} is enrolled in {program.title}. The welcome "
                  f"text goes out at the next hour the program allows in their time zone.",
                  "success")
            return redirect(url_for("console.participant", participant_id=participant.id))
    return render_template(
        "console/enroll.html", title="Enroll a participant", form=form, groups=groups,
        zones=sorted(_common_zones()), unavailable=sorted(catalog.unavailable),
    ), 400 if request.method == "POST" else 200
