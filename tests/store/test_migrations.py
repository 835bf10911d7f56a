"""Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from bot.settings import Settings
from bot.store.db import get_engine
from bot.store.migrate import alembic_config, upgrade
from tests.conftest import TEST_DATABASE_URL

TABLES = {t.name for t in SQLModel.metadata.sorted_tables}


def differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'data' / 'tend.sqlite3'}").validated()


@pytest.fixture
def postgres_settings() -> Iterator[Settings]:
    """Settings pointing at a fresh PostgreSQL schema, dropped afterwards."""
    schema = f"tend_migrate_{uuid.uuid4().hex[:8]}"
    admin = get_engine(TEST_DATABASE_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    settings = Settings(
        database_url=f"{TEST_DATABASE_URL}?options=-csearch_path%3D{schema}"
    ).validated()
    try:
        yield settings
    finally:
        get_engine(settings.database_url).dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def test_upgrading_a_fresh_sqlite_file_matches_the_models(sqlite_settings: Settings) -> None:
    upgrade(sqlite_settings)  # also creates the missing data/ folder
    engine = get_engine(sqlite_settings.database_url)
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert differences(engine) == []


def test_upgrading_a_fresh_postgres_schema_matches_the_models(postgres_settings: Settings) -> None:
    upgrade(postgres_settings)
    engine = get_engine(postgres_settings.database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT current_schema()")).scalar().startswith(
            "tend_migrate_"
        )
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert differences(engine) == []


def test_upgrading_twice_changes_nothing(sqlite_settings: Settings) -> None:
    upgrade(sqlite_settings)
    upgrade(sqlite_settings)
    assert differences(get_engine(sqlite_settings.database_url)) == []


def test_downgrading_to_base_removes_the_tables(sqlite_settings: Settings) -> None:
    upgrade(sqlite_settings)
    command.downgrade(alembic_config(sqlite_settings), "base")
    engine = get_engine(sqlite_settings.database_url)
    assert not TABLES & set(inspect(engine).get_table_names())
