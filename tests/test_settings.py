"""Settings: local defaults, clear refusals, and a production that will not start unsafe."""

from __future__ import annotations

import ast
import re
from datetime import time
from pathlib import Path

import pytest

import bot.settings
from bot.settings import (
    DEFAULT_SECRET_KEY,
    SANDBOX_API,
    TWILIO_API,
    Settings,
    SettingsError,
)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# Everything a real deployment sets.
PRODUCTION = {
    "TEND_ENV": "production",
    "SECRET_KEY": "a-long-random-production-secret",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "a-real-auth-token",
    "TWILIO_FROM_NUMBER": "+14155550100",
    "DATABASE_URL": "postgres://tend:pw@db.example.org:5432/tend",
    "REDIS_URL": "redis://cache.example.org:6379/0",
    "PUBLIC_BASE_URL": "https://tend.example.org",
}


def test_it_runs_locally_with_an_empty_environment() -> None:
    settings = Settings.from_env({})
    assert settings.env == "development"
    assert not settings.production
    assert settings.database_url == f"sqlite:///{settings.instance_dir / 'tend.sqlite3'}"
    assert settings.uses_embedded_redis
    assert settings.twilio_api_base_url == SANDBOX_API
    assert settings.quiet_hours_start == time(21, 0)
    assert settings.quiet_hours_end == time(8, 0)
    assert settings.default_timezone == "America/New_York"
    assert (settings.narratives_dir / "daily-checkin" / "program.yaml").is_file()


def test_the_local_database_lives_in_the_instance_folder(tmp_path: Path) -> None:
    settings = Settings.from_env({"TEND_INSTANCE_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'tend.sqlite3'}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgresql://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("  postgres://u@h/d  ", "postgresql+psycopg://u@h/d"),
        ("sqlite:///data/tend.sqlite3", "sqlite:///data/tend.sqlite3"),
    ],
)
def test_postgres_urls_are_rewritten_for_psycopg(raw: str, expected: str) -> None:
    assert Settings.from_env({"DATABASE_URL": raw}).database_url == expected
    assert Settings(database_url=raw).validated().database_url == expected


def test_values_are_read_and_typed() -> None:
    settings = Settings.from_env(
        {
            "QUIET_HOURS_START": "22:30",
            "QUIET_HOURS_END": "7:15",
            "DAILY_MESSAGE_CAP": "3",
            "SEND_RATE_PER_SECOND": "2.5",
            "PUBLIC_BASE_URL": "https://tend.example.org/",
            "DEFAULT_TIMEZONE": "Europe/London",
            "TEND_TESTING": "yes",
        }
    )
    assert (settings.quiet_hours_start, settings.quiet_hours_end) == (time(22, 30), time(7, 15))
    assert settings.daily_message_cap == 3
    assert settings.send_rate_per_second == 2.5
    assert settings.public_base_url == "https://tend.example.org"  # no trailing slash
    assert settings.default_timezone == "Europe/London"
    assert settings.testing is True


def test_an_empty_variable_counts_as_unset() -> None:
    assert Settings.from_env({"DAILY_MESSAGE_CAP": "", "TEND_ENV": ""}) == Settings.from_env({})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("QUIET_HOURS_START", "25:00", "QUIET_HOURS_START must be a time like 21:00, not '25:00'"),
        ("QUIET_HOURS_END", "8am", "QUIET_HOURS_END must be a time like 21:00"),
        ("DAILY_MESSAGE_CAP", "0", "DAILY_MESSAGE_CAP must be at least 1, not 0"),
        ("DAILY_MESSAGE_CAP", "four", "DAILY_MESSAGE_CAP must be a whole number, not 'four'"),
        ("SEND_RATE_PER_SECOND", "0", "SEND_RATE_PER_SECOND must be more than 0"),
        ("CLAIM_TIMEOUT_SECONDS", "5", "CLAIM_TIMEOUT_SECONDS must be at least 10"),
        ("PUBLIC_BASE_URL", "not-a-url", "PUBLIC_BASE_URL must be an http(s) URL, not 'not-a-url'"),
        ("TWILIO_API_BASE_URL", "ftp://x", "TWILIO_API_BASE_URL must be an http(s) URL"),
        ("TEND_ENV", "staging", "TEND_ENV must be development, production or test, not 'staging'"),
        ("DEFAULT_TIMEZONE", "Mars/Base", "DEFAULT_TIMEZONE must be an IANA zone"),
        ("TEND_TESTING", "maybe", "TEND_TESTING must be true or false, not 'maybe'"),
    ],
)
def test_it_refuses_a_bad_value_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    assert message in str(caught.value)


def test_production_starts_when_everything_is_set() -> None:
    settings = Settings.from_env(PRODUCTION)
    assert settings.production
    assert settings.database_url == "postgresql+psycopg://tend:pw@db.example.org:5432/tend"
    assert not settings.uses_embedded_redis
    assert settings.twilio_api_base_url == TWILIO_API


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY is the development default"),
        ({"SECRET_KEY": DEFAULT_SECRET_KEY}, "SECRET_KEY is the development default"),
        ({"TWILIO_AUTH_TOKEN": None}, "TWILIO_AUTH_TOKEN is missing"),
        ({"TWILIO_ACCOUNT_SID": None}, "TWILIO_ACCOUNT_SID is missing"),
        ({"DATABASE_URL": None}, "DATABASE_URL is missing (SQLite is for local use)"),
        ({"DATABASE_URL": "sqlite:///tend.sqlite3"}, "SQLite is for local use"),
        ({"REDIS_URL": None}, "REDIS_URL is missing"),
        ({"PUBLIC_BASE_URL": None}, "PUBLIC_BASE_URL is missing"),
        ({"PUBLIC_BASE_URL": "http://127.0.0.1:5000"}, "PUBLIC_BASE_URL is a local address"),
        ({"PUBLIC_BASE_URL": "http://localhost:8000/"}, "PUBLIC_BASE_URL is a local address"),
    ],
)
def test_production_refuses_to_start_with_local_defaults(
    changes: dict[str, str | None], problem: str
) -> None:
    environ = {**PRODUCTION, **changes}
    environ = {k: v for k, v in environ.items() if v is not None}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    assert str(caught.value).startswith("production refuses to start: ")
    assert problem in str(caught.value)


def test_production_lists_every_problem_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"TEND_ENV": "production"})
    message = str(caught.value)
    for name in ["SECRET_KEY", "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID", "REDIS_URL"]:
        assert name in message
    assert "DATABASE_URL" in message
    assert "PUBLIC_BASE_URL is missing" in message


def test_production_names_bad_values_and_missing_settings_in_one_refusal() -> None:
    environ = {
        "TEND_ENV": "production",
        "SECRET_KEY": "a-long-random-production-secret",
        "DAILY_MESSAGE_CAP": "four",
        "QUIET_HOURS_START": "25:00",
        "PUBLIC_BASE_URL": "not-a-url",
        "DEFAULT_TIMEZONE": "Mars/Base",
        "DATABASE_URL": "mysql://root@db.example.org/tend",
    }
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    assert str(caught.value).startswith("production refuses to start: ")
    assert sorted(caught.value.problems) == sorted(
        [
            "DAILY_MESSAGE_CAP must be a whole number, not 'four'",
            "QUIET_HOURS_START must be a time like 21:00, not '25:00'",
            "PUBLIC_BASE_URL must be an http(s) URL, not 'not-a-url'",
            "DEFAULT_TIMEZONE must be an IANA zone like America/New_York, not 'Mars/Base'",
            "DATABASE_URL must be a PostgreSQL (postgres://...) or SQLite (sqlite:///...) URL",
            "TWILIO_AUTH_TOKEN is missing",
            "TWILIO_ACCOUNT_SID is missing",
            "REDIS_URL is missing",
        ]
    )
    for problem in caught.value.problems:
        assert problem in str(caught.value)


def test_every_bad_value_is_named_at_once_locally_too() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"SEND_CONCURRENCY": "0", "TEND_TESTING": "maybe"})
    assert str(caught.value) == (
        "SEND_CONCURRENCY must be at least 1, not 0; TEND_TESTING must be true or false, "
        "not 'maybe'"
    )


def test_validated_settings_name_every_problem_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings(env="production", twilio_from_number="", default_timezone="Nowhere").validated()
    problems = caught.value.problems
    assert "set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID" in problems
    assert any(p.startswith("DEFAULT_TIMEZONE must be an IANA zone") for p in problems)
    assert {"SECRET_KEY is the development default", "REDIS_URL is missing"} <= set(problems)
    assert any(p.startswith("PUBLIC_BASE_URL is missing") for p in problems)


def test_locally_the_public_url_is_the_local_web_app() -> None:
    assert Settings.from_env({}).public_base_url == "http://127.0.0.1:5000"
    assert Settings().validated().public_base_url == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    ("environ", "api"),
    [
        ({}, SANDBOX_API),
        ({"TEND_ENV": "test"}, SANDBOX_API),
        (PRODUCTION, TWILIO_API),
        ({**PRODUCTION, "TWILIO_API_BASE_URL": "https://proxy.example.org/"},
         "https://proxy.example.org"),
    ],
)
def test_messages_go_to_the_sandbox_locally_and_to_twilio_in_production(
    environ: dict[str, str], api: str
) -> None:
    assert Settings.from_env(environ).twilio_api_base_url == api


def test_a_secret_never_comes_from_a_default_in_production() -> None:
    settings = Settings.from_env(PRODUCTION)
    assert settings.secret_key == PRODUCTION["SECRET_KEY"]
    assert settings.twilio_auth_token == PRODUCTION["TWILIO_AUTH_TOKEN"]


def test_overrides_must_name_real_settings() -> None:
    with pytest.raises(SettingsError, match="unknown settings: colour"):
        Settings().with_overrides(colour="blue")


def variables_read_by_settings() -> set[str]:
    """Every environment variable name Settings.from_env reads (itself, or from the module's
    tables of names)."""
    tree = ast.parse(Path(bot.settings.__file__).read_text(encoding="utf-8"))
    [from_env] = [
        node for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "from_env"
    ]
    tables = [node for node in tree.body if isinstance(node, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id.endswith("_SETTINGS") for t in node.targets)]
    return {
        node.value
        for root in [from_env, *tables] for node in ast.walk(root)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+", node.value)
    }


def test_the_settings_module_reads_the_variables_we_expect() -> None:
    names = variables_read_by_settings()
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "TWILIO_AUTH_TOKEN", "TEND_ENV"} <= names


@pytest.mark.xfail(
    not README.exists(), reason="README.md is not written yet", strict=False
)
def test_every_environment_variable_is_documented_in_the_readme() -> None:
    assert README.exists(), "README.md is missing: it needs a configuration table"
    table_rows = [
        line for line in README.read_text(encoding="utf-8").splitlines()
        if line.lstrip().startswith("|")
    ]
    documented = {name for row in table_rows for name in re.findall(r"`([A-Z0-9_]+)`", row)}
    missing = sorted(variables_read_by_settings() - documented)
    assert not missing, f"add these to README.md's configuration table: {', '.join(missing)}"


def test_a_database_tend_cannot_run_on_is_refused_at_start():
    from bot.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="DATABASE_URL must be a PostgreSQL"):
        Settings.from_env({"DATABASE_URL": "mysql://root@127.0.0.1/tend"})
