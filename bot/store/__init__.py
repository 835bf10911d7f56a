"""The store: tables, the engine and sessions, migrations."""
