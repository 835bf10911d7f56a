"""Staff accounts: roles and what they allow, argon2 passwords, the lockout, the second factor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from freezegun import freeze_time
from sqlmodel import Session

from bot.people import staff
from bot.store.support import Staff
from tests.people.factories import PASSWORD, TEAM, add_team

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(("role", "allowed", "refused"), [
    ("admin", {"staff.manage", "audit.view", "participants.manage", "participants.identify"},
     set()),
    ("coordinator", {"participants.manage", "participants.identify", "notes.add"},
     {"staff.manage", "audit.view"}),
    ("coach", {"participants.identify", "messages.read", "notes.add"},
     {"participants.manage", "staff.manage", "audit.view"}),
    ("analyst", {"participants.view"},
     {"participants.identify", "messages.read", "notes.add", "participants.manage",
      "staff.manage", "audit.view"}),
])
def test_each_role_is_allowed_what_the_study_gives_it(
    session: Session, role: str, allowed: set[str], refused: set[str]
) -> None:
    person = add_team(session)[role]
    assert {p for p in allowed | refused if staff.can(person, p)} == allowed


def test_an_analyst_reads_message_text_only_when_granted_it(session: Session) -> None:
    analyst = add_team(session)["analyst"]
    assert not staff.can(analyst, "messages.read")
    analyst.sees_bodies = True
    assert staff.can(analyst, "messages.read")
    assert not staff.can(analyst, "participants.identify")  # numbers never


def test_a_password_is_kept_as_an_argon2_hash_and_checked(session: Session) -> None:
    person = staff.add(session=session, email=" Nell@Clinic.Example ", role="coach",
                       password=PASSWORD)
    assert person.email == "nell@clinic.example"
    assert person.password_hash.startswith("$argon2id$") and PASSWORD not in person.password_hash
    assert staff.authenticate(session=session, email="NELL@clinic.example",
                              password=PASSWORD).ok
    assert staff.authenticate(session=session, email="nell@clinic.example",
                              password="not the password").outcome == "wrong"


@pytest.mark.parametrize(("email", "role", "password", "message"), [
    ("no-at-sign", "coach", PASSWORD, "is not an email address"),
    ("x@clinic.example", "superuser", PASSWORD, "role must be one of"),
    ("x@clinic.example", "coach", "short", "at least 12 characters"),
])
def test_an_account_that_cannot_be_made_is_refused_with_the_reason(
    session: Session, email: str, role: str, password: str, message: str
) -> None:
    with pytest.raises(staff.StaffError, match=message):
        staff.add(session=session, email=email, role=role, password=password)


def test_an_email_has_one_account_and_a_removed_one_can_be_given_back(session: Session) -> None:
    team = add_team(session)
    with pytest.raises(staff.StaffError, match="already has an account"):
        staff.add(session=session, email=TEAM["coach"], role="coach", password=PASSWORD)
    staff.remove(session=session, staff=team["coach"])
    assert staff.authenticate(session=session, email=TEAM["coach"],
                              password=PASSWORD).outcome == "wrong"
    back = staff.add(session=session, email=TEAM["coach"], role="analyst",
                     password="another long passphrase")
    assert back.id == team["coach"].id and back.role == "analyst" and back.removed_at is None


def test_the_last_admin_can_be_neither_removed_nor_demoted(session: Session) -> None:
    admin = add_team(session)["admin"]
    with pytest.raises(staff.StaffError, match="last admin"):
        staff.remove(session=session, staff=admin)
    with pytest.raises(staff.StaffError, match="last admin"):
        staff.change_role(session=session, staff=admin, role="coach")
    staff.add(session=session, email="second@clinic.example", role="admin", password=PASSWORD)
    staff.change_role(session=session, staff=admin, role="coach")
    assert admin.role == "coach"


def fail(session: Session, times: int, email: str = TEAM["coach"]) -> staff.SignIn:
    result = staff.SignIn("wrong")
    for _ in range(times):
        result = staff.authenticate(session=session, email=email, password="wrong guess!!")
        session.commit()
    return result


def test_five_failed_sign_ins_lock_the_account_for_fifteen_minutes(session: Session) -> None:
    add_team(session)
    with freeze_time(START) as clock:
        assert fail(session, 4).outcome == "wrong"
        locked = fail(session, 1)
        assert locked.outcome == "locked" and locked.locked_until == START + timedelta(minutes=15)
        # Locked: even the right password is refused, and the lock does not grow.
        clock.tick(timedelta(minutes=14))
        assert staff.authenticate(session=session, email=TEAM["coach"],
                                  password=PASSWORD).outcome == "locked"
        clock.tick(timedelta(minutes=1, seconds=1))
        assert staff.authenticate(session=session, email=TEAM["coach"], password=PASSWORD).ok


def test_a_success_starts_the_count_of_failures_again(session: Session) -> None:
    add_team(session)
    fail(session, 4)
    assert staff.authenticate(session=session, email=TEAM["coach"], password=PASSWORD).ok
    assert fail(session, 4).outcome == "wrong"


def test_an_admin_lifts_a_lock(session: Session) -> None:
    team = add_team(session)
    fail(session, 5)
    staff.reset_lockout(session=session, staff=team["coach"])
    assert staff.authenticate(session=session, email=TEAM["coach"], password=PASSWORD).ok


def with_totp(session: Session, person: Staff) -> pyotp.TOTP:
    secret = staff.new_totp_secret()
    assert staff.enable_totp(session=session, staff=person, secret=secret,
                             code=pyotp.TOTP(secret).now())
    session.commit()
    return pyotp.TOTP(secret)


def test_a_second_factor_is_asked_after_the_password_and_each_code_works_once(
    session: Session,
) -> None:
    person = add_team(session)["coach"]
    with freeze_time(START) as clock:
        totp = with_totp(session, person)
        clock.tick(timedelta(seconds=30))
        assert staff.authenticate(session=session, email=person.email,
                                  password=PASSWORD).outcome == "needs-code"
        code = totp.now()
        assert staff.verify_code(session=session, staff=person, code=code).ok
        # The same code again (someone who watched it typed) is refused.
        assert staff.verify_code(session=session, staff=person, code=code).outcome == "wrong"


def test_wrong_codes_count_toward_the_lockout(session: Session) -> None:
    person = add_team(session)["coach"]
    with freeze_time(START):
        with_totp(session, person)
        results = [staff.verify_code(session=session, staff=person, code="000000").outcome
                   for _ in range(5)]
    assert results[-1] == "locked"


def test_a_second_factor_is_turned_on_only_by_a_code_from_its_secret(session: Session) -> None:
    person = add_team(session)["coach"]
    secret = staff.new_totp_secret()
    assert not staff.enable_totp(session=session, staff=person, secret=secret, code="123456")
    assert person.totp_secret is None
    uri = staff.totp_uri(email=person.email, secret=secret)
    assert uri.startswith("otpauth://totp/Tend:cole%40clinic.example?secret=" + secret)
