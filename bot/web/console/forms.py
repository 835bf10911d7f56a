"""The console's forms. Each carries its CSRF token; the console checks it on every POST."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from bot.delivery.encoding import MAX_CHARACTERS
from bot.people.conversations import OUTCOMES
from bot.people.participants import STATUS_LABELS
from bot.people.staff import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, ROLE_SUMMARIES
from bot.store.support import ROLES

ROLE_CHOICES = {role: role.capitalize() for role in ROLES}


class LoginForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), Length(max=254)],
                        render_kw={"autocomplete": "username", "autofocus": True,
                                   "type": "email", "spellcheck": "false"})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)],
                             render_kw={"autocomplete": "current-password"})
    next = HiddenField()


class CodeForm(FlaskForm):
    code = StringField("6-digit code", validators=[DataRequired(), Length(min=6, max=8)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric",
                                  "autofocus": True, "pattern": r"[0-9 ]{6,8}"})


class EnableTotpForm(FlaskForm):
    code = StringField("6-digit code", validators=[DataRequired(), Length(min=6, max=8)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric",
                                  "pattern": r"[0-9 ]{6,8}"})


class ConfirmForm(FlaskForm):
    """A button that acts (sign out, reveal, reset): only its CSRF token is sent."""


class DisableTotpForm(FlaskForm):
    password = PasswordField("Your password", validators=[DataRequired()],
                             render_kw={"autocomplete": "current-password"})


class StaffForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), Length(max=254)],
                        render_kw={"type": "email", "autocomplete": "off",
                                   "spellcheck": "false"})
    name = StringField("Name", validators=[Optional(), Length(max=120)])
    role = SelectField("Role", choices=ROLE_CHOICES, validators=[DataRequired()], default="coach",
                       description="; ".join(f"{r}: {s}" for r, s in ROLE_SUMMARIES.items()))
    password = PasswordField(
        "First password", validators=[DataRequired(), Length(
            min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH,
            message=f"A password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} "
                    f"characters.")],
        description=f"At least {MIN_PASSWORD_LENGTH} characters. Give it to them in person or "
                    f"by phone, never by email.",
        render_kw={"autocomplete": "new-password"})


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES, validators=[DataRequired()])
    sees_bodies = BooleanField("Analyst may read message text")


class SearchForm(FlaskForm):
    """A GET form: it reads data and changes nothing, so it needs no token."""

    class Meta:
        csrf = False

    id = IntegerField("Participant id", validators=[Optional(), NumberRange(min=1)],
                      render_kw={"inputmode": "numeric"})
    number = StringField("Phone number", validators=[Optional(), Length(max=32)],
                         description="The whole number, or its last four digits or more.",
                         render_kw={"inputmode": "tel", "autocomplete": "off"})
    program = SelectField("Program", choices={}, validators=[Optional()])
    status = SelectField("Status", validators=[Optional()],
                         choices={"": "Any status", **STATUS_LABELS})


class ReasonForm(FlaskForm):
    reason = StringField("Reason", validators=[InputRequired(), Length(min=3, max=200)],
                         description="Kept in the consent record and the audit log. Do not "
                                     "write a phone number or what the participant texted.")


class StopForm(ReasonForm):
    confirm = BooleanField("I understand no message will be sent to this participant again "
                           "unless they text START.", validators=[DataRequired()])


class NoteForm(FlaskForm):
    body = TextAreaField("Note", validators=[InputRequired(), Length(min=1, max=4000)],
                         description="Seen by staff only, never by the participant.",
                         render_kw={"rows": 3})


class ProfileForm(FlaskForm):
    """Time zone; the program's attributes come as fields named attr-<name>."""

    timezone = StringField("Time zone", validators=[DataRequired(), Length(max=64)],
                           description="An IANA name like America/Chicago.",
                           render_kw={"list": "zones", "autocomplete": "off",
                                      "spellcheck": "false"})


# A conversation: the text to send, its assignment, how it ended.
class ReplyForm(FlaskForm):
    body = TextAreaField("Text to send", validators=[InputRequired(), Length(
        min=1, max=MAX_CHARACTERS)], render_kw={"rows": 4, "maxlength": MAX_CHARACTERS})
    quiet_confirmed = BooleanField("Send it now anyway")


class AssignForm(FlaskForm):
    staff_id = SelectField("Assigned to", choices={}, validate_choice=False)


class ResolveForm(FlaskForm):
    outcome = SelectField("How it ended", validators=[DataRequired()],
                          choices={"": "Choose…", **{o: o for o in OUTCOMES}})
