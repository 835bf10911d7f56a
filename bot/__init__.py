"""Tend: an SMS hub for digital micro-intervention care."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from bot.settings import Settings


def create_app(test_config: Settings | Mapping[str, Any] | None = None) -> Flask:
    """The web app: settings from the environment, then `test_config` on top."""
    if isinstance(test_config, Settings):
        settings = test_config
    else:
        settings = Settings.from_env(**dict(test_config or {}))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.secret_key, TESTING=settings.testing, TEND=settings)

    from bot.db import get_engine

    app.extensions["tend.engine"] = get_engine(settings.database_url)

    from bot import health, webhooks

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    return app
