"""The console through Flask's test client: a team of four roles, signed in by the login form."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session

from bot.store.support import Staff
from tests.people.factories import PASSWORD, TEAM, add_team


def csrf_token(client: FlaskClient, path: str = "/console/login") -> str:
    """The CSRF token the console put in a page's <meta> for this client's session."""
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> object:
    token = csrf_token(client)
    return client.post("/console/login", data={"email": email, "password": password,
                                               "csrf_token": token})


@pytest.fixture
def team(session: Session) -> dict[str, Staff]:
    return add_team(session)


class Console:
    """A test client signed in as one member of the team; `post` sends the session's token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token = csrf_token(client, "/console/account")

    def get(self, path: str, **kwargs: object) -> object:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: object) -> object:
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kwargs)


@pytest.fixture
def console_as(app, team: dict[str, Staff]) -> Callable[[str], Console]:  # type: ignore[no-untyped-def]
    """A console session for a role: console_as("coach")."""

    def make(role: str) -> Console:
        client = app.test_client()
        response = sign_in(client, TEAM[role])
        assert response.status_code == 302, response.get_data(as_text=True)
        return Console(client)

    return make
