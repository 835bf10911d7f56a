"""Staff accounts, for admins: add someone, change a role, unlock, remove."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, url_for

from bot import web
from bot.people import staff
from bot.store.db import session_scope
from bot.store.support import Staff
from bot.web.console import bp
from bot.web.console.auth import me, record, requires
from bot.web.console.forms import ConfirmForm, RoleForm, StaffForm


def _page(form: StaffForm | None = None, status: int = 200) -> Any:
    with session_scope(web.engine()) as db:
        people = staff.list_staff(session=db)
    rows = [
        {"staff": person, "locked": staff.locked_until(person),
         "role_form": RoleForm(formdata=None, role=person.role, sees_bodies=person.sees_bodies,
                               prefix=f"s{person.id}")}
        for person in people
    ]
    return render_template("console/staff.html", title="Staff", rows=rows,
                           form=form or StaffForm(formdata=None), confirm=ConfirmForm(),
                           summaries=staff.ROLE_SUMMARIES), status


@bp.get("/staff")
@requires("staff.manage")
def staff_accounts() -> Any:
    return _page()


@bp.post("/staff")
@requires("staff.manage")
def staff_add() -> Any:
    form = StaffForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    try:
        with session_scope(web.engine()) as db:
            person = staff.add(session=db, email=form.email.data or "", role=form.role.data,
                               password=form.password.data or "", name=form.name.data or "")
            record(db, "add-staff", detail=f"{person.email} as {person.role}")
    except staff.StaffError as exc:
        form.email.errors = [*form.email.errors, str(exc)]
        return _page(form, 400)
    flash(f"{person.email} can now sign in as {person.role}.", "success")
    return redirect(url_for("console.staff_accounts"))


def _change(staff_id: int, action: str, change: Any) -> Any:
    """Apply `change(db, person)` to one account and log it; a refusal is shown, not raised."""
    try:
        with session_scope(web.engine()) as db:
            person = db.get(Staff, staff_id)
            if person is None:
                abort(404)
            message = change(db, person)
            record(db, action, detail=f"{person.email}: {message}")
    except staff.StaffError as exc:
        flash(str(exc), "error")
    else:
        flash(f"{person.email}: {message}.", "success")
    return redirect(url_for("console.staff_accounts"))


@bp.post("/staff/<int:staff_id>/role")
@requires("staff.manage")
def staff_role(staff_id: int) -> Any:
    form = RoleForm(prefix=f"s{staff_id}")
    if not form.validate_on_submit():
        flash("Choose one of the roles.", "error")
        return redirect(url_for("console.staff_accounts"))

    def change(db: Any, person: Staff) -> str:
        staff.change_role(session=db, staff=person, role=form.role.data)
        person.sees_bodies = bool(form.sees_bodies.data) and person.role == "analyst"
        db.add(person)
        return f"role {person.role}" + (", reads message text" if person.sees_bodies else "")

    return _change(staff_id, "change-role", change)


@bp.post("/staff/<int:staff_id>/unlock")
@requires("staff.manage")
def staff_unlock(staff_id: int) -> Any:
    def change(db: Any, person: Staff) -> str:
        staff.reset_lockout(session=db, staff=person)
        return "unlocked"

    return _change(staff_id, "reset-lockout", change)


@bp.post("/staff/<int:staff_id>/totp")
@requires("staff.manage")
def staff_reset_totp(staff_id: int) -> Any:
    def change(db: Any, person: Staff) -> str:
        staff.disable_totp(session=db, staff=person)
        return "two-step sign-in turned off (they can set it up again)"

    return _change(staff_id, "reset-totp", change)


@bp.post("/staff/<int:staff_id>/remove")
@requires("staff.manage")
def staff_remove(staff_id: int) -> Any:
    current = me()
    if current is not None and current.id == staff_id:
        flash("You cannot remove your own account; ask another admin.", "error")
        return redirect(url_for("console.staff_accounts"))

    def change(db: Any, person: Staff) -> str:
        staff.remove(session=db, staff=person)
        return "removed; they can no longer sign in"

    return _change(staff_id, "remove-staff", change)
