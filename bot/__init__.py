"""Tend: an SMS hub for digital micro-intervention care."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from bot.settings import Settings

# Twilio's webhook bodies are a few KB; anything far larger is refused unread.
MAX_REQUEST_BYTES = 64 * 1024


def create_app(test_config: Settings | Mapping[str, Any] | None = None) -> Flask:
    """The web app: settings from the environment, then `test_config` on top."""
    if isinstance(test_config, Settings):
        settings = test_config
    else:
        settings = Settings.from_env(**dict(test_config or {}))
    from bot import logs

    # Under gunicorn, logging is this app's to set up (gunicorn keeps its own lines apart).
    logs.configure(settings.log_format, production=settings.production)

    app = Flask(__name__)
    logs.trace_requests(app)  # first, so every other hook logs with the request's id
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        TEND=settings,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
    )

    from bot.store.db import get_engine

    app.extensions["tend.engine"] = get_engine(settings.database_url)

    from bot.web import health, webhooks

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)

    # Read the programs and compile the crisis phrases as the process starts, not in the first
    # texts it answers (they would wait a few hundred milliseconds for it).
    from bot import web
    from bot.conversation import crisis

    with app.app_context():
        web.programs()
    crisis.ready()

    from bot.web import console

    console.init_app(app)
    return app
