"""Staff accounts: who may sign in to the console, with which role, and how they prove it.

Passwords are kept as argon2 hashes. After five failed attempts in a row (a wrong password or a
wrong second-factor code) an account is locked for fifteen minutes; an admin can lift the lock.
A second factor (a TOTP code from an authenticator app) is optional per account.
"""

from __future__ import annotations

import hmac
import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, func, select, update

from bot.clock import now
from bot.store.support import ROLES, Staff

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
TOTP_ISSUER = "Tend"

# What each role may do. Admins may do everything; analysts see de-identified data only.
COACH = frozenset({
    "participants.view",  # search participants, open their page
    "participants.identify",  # see and search phone numbers (reveal is audited)
    "messages.read",  # message bodies and staff notes
    "notes.add",  # a staff-only note on a participant
    "conversations.reply",  # answer a participant from the inbox
})
COORDINATOR = COACH | {
    "participants.manage",  # pause, resume, attributes, time zone, stop all messages
    "participants.enroll",
    "alerts.manage",
    "replies.manage",  # saved replies
    "reports.view",  # reply-time reports
}
ADMIN = COORDINATOR | {"staff.manage", "audit.view", "oncall.manage"}
ANALYST = frozenset({"participants.view"})
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": ADMIN, "coordinator": COORDINATOR, "coach": COACH, "analyst": ANALYST,
}
ROLE_SUMMARIES = {
    "admin": "everything, plus staff accounts and the audit log",
    "coordinator": "what a coach does, plus pausing, editing and stopping participants",
    "coach": "participants' pages with numbers and messages; staff notes",
    "analyst": "de-identified participant data: no numbers, no message text",
}
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


class StaffError(ValueError):
    """A staff change that cannot be made, with a reason the person can act on."""


@dataclass(frozen=True)
class SignIn:
    """The outcome of one sign-in step."""

    outcome: str  # ok, needs-code, wrong, locked
    staff: Staff | None = None
    locked_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def can(staff: Staff | None, permission: str) -> bool:
    """True if `staff` may do `permission`; an analyst reads bodies only when granted them."""
    if staff is None or staff.removed_at is not None:
        return False
    if permission == "messages.read" and staff.role == "analyst":
        return staff.sees_bodies
    return permission in PERMISSIONS.get(staff.role, frozenset())


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache(maxsize=1)
def _unknown_hash() -> str:
    """A hash to check when no account matches, so that case takes as long as a wrong password."""
    return _hasher().hash("no account has this password")


def normalize_email(raw: str) -> str:
    email = (raw or "").strip().lower()
    if not EMAIL.fullmatch(email) or len(email) > 254:
        raise StaffError(f"{raw.strip()[:80]!r} is not an email address")
    return email


def check_role(role: str) -> str:
    if role not in ROLES:
        raise StaffError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise StaffError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    return password


def find(*, session: Session, email: str) -> Staff | None:
    return session.exec(select(Staff).where(Staff.email == email.strip().lower())).first()


def list_staff(*, session: Session, include_removed: bool = True) -> list[Staff]:
    query = select(Staff).order_by(col(Staff.removed_at).is_not(None), Staff.email)
    if not include_removed:
        query = query.where(col(Staff.removed_at).is_(None))
    return list(session.exec(query))


def add(
    *, session: Session, email: str, role: str, password: str, name: str = ""
) -> Staff:
    """A new account; the email of a removed one gives it back, with the new role and password."""
    email, role = normalize_email(email), check_role(role)
    password_hash = _hasher().hash(check_password(password))
    staff = find(session=session, email=email)
    if staff is not None and staff.removed_at is None:
        raise StaffError(f"{email} already has an account ({staff.role})")
    if staff is None:
        staff = Staff(email=email, role=role, password_hash=password_hash)
    staff.role, staff.password_hash, staff.name = role, password_hash, name.strip()[:120]
    staff.removed_at, staff.failed_logins, staff.locked_until = None, 0, None
    staff.totp_secret, staff.totp_last_step = None, None
    session.add(staff)
    session.flush()
    return staff


def _active_admins(session: Session) -> int:
    return session.exec(
        select(func.count()).select_from(Staff).where(
            Staff.role == "admin", col(Staff.removed_at).is_(None)
        )
    ).one()


def remove(*, session: Session, staff: Staff) -> None:
    """The person can no longer sign in; the row stays, because the audit log names it."""
    if staff.removed_at is not None:
        raise StaffError(f"{staff.email} was already removed")
    if staff.role == "admin" and _active_admins(session) <= 1:
        raise StaffError(f"{staff.email} is the last admin; add another admin first")
    staff.removed_at = now()
    session.add(staff)


def change_role(*, session: Session, staff: Staff, role: str) -> None:
    role = check_role(role)
    if staff.role == "admin" and role != "admin" and _active_admins(session) <= 1:
        raise StaffError(f"{staff.email} is the last admin; add another admin first")
    staff.role = role
    session.add(staff)


def set_password(*, session: Session, staff: Staff, password: str) -> None:
    staff.password_hash = _hasher().hash(check_password(password))
    session.add(staff)


def reset_lockout(*, session: Session, staff: Staff) -> None:
    staff.failed_logins, staff.locked_until = 0, None
    session.add(staff)


def password_matches(staff: Staff, password: str) -> bool:
    """For a signed-in person confirming a change to their own account."""
    try:
        return _hasher().verify(staff.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def locked_until(staff: Staff, moment: datetime | None = None) -> datetime | None:
    """When the lock on `staff` ends, or None if it is not locked."""
    if staff.locked_until is not None and staff.locked_until > (moment or now()):
        return staff.locked_until
    return None


def _failed(session: Session, staff: Staff) -> SignIn:
    """Count one failure in one statement (attempts in parallel each count); lock at the limit."""
    count = session.exec(  # type: ignore[call-overload]
        update(Staff).where(col(Staff.id) == staff.id)
        .values(failed_logins=col(Staff.failed_logins) + 1)
        .returning(col(Staff.failed_logins))
    ).scalar_one()
    staff.failed_logins = count
    if count < MAX_FAILED_LOGINS:
        return SignIn("wrong", staff)
    staff.failed_logins, staff.locked_until = 0, now() + LOCKOUT
    session.add(staff)
    return SignIn("locked", staff, staff.locked_until)


def _signed_in(session: Session, staff: Staff) -> SignIn:
    staff.failed_logins, staff.locked_until, staff.last_login_at = 0, None, now()
    session.add(staff)
    return SignIn("ok", staff)


def authenticate(*, session: Session, email: str, password: str) -> SignIn:
    """Check an email and password. A locked account is refused before its password is tried."""
    staff = find(session=session, email=email[:254])
    if staff is None or staff.removed_at is not None:
        with suppress(VerificationError):
            _hasher().verify(_unknown_hash(), password)
        return SignIn("wrong")
    if until := locked_until(staff):
        return SignIn("locked", staff, until)
    try:
        _hasher().verify(staff.password_hash, password)
    except (VerificationError, InvalidHashError):
        return _failed(session, staff)
    if _hasher().check_needs_rehash(staff.password_hash):
        staff.password_hash = _hasher().hash(password)
    if staff.totp_secret:
        return SignIn("needs-code", staff)
    return _signed_in(session, staff)


def _code_step(secret: str, code: str, last_step: int | None, moment: datetime) -> int | None:
    """The time step `code` belongs to (this one, or one either side for a slow clock), or None
    if it is wrong or was already used."""
    code = re.sub(r"\s", "", code or "")
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(moment)
    for step in (current - 1, current, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def verify_code(*, session: Session, staff: Staff, code: str) -> SignIn:
    """The second sign-in step: a wrong code counts as a failed attempt, like a wrong password."""
    if staff.removed_at is not None or not staff.totp_secret:
        return SignIn("wrong")
    if until := locked_until(staff):
        return SignIn("locked", staff, until)
    step = _code_step(staff.totp_secret, code, staff.totp_last_step, now())
    if step is None:
        return _failed(session, staff)
    staff.totp_last_step = step
    return _signed_in(session, staff)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(*, email: str, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads (as text or from a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def enable_totp(*, session: Session, staff: Staff, secret: str, code: str) -> bool:
    """Turn the second factor on, once a code from the new secret proves the app has it."""
    step = _code_step(secret, code, None, now())
    if step is None:
        return False
    staff.totp_secret, staff.totp_last_step = secret, step
    session.add(staff)
    return True


def disable_totp(*, session: Session, staff: Staff) -> None:
    staff.totp_secret, staff.totp_last_step = None, None
    session.add(staff)
