from __future__ import annotations

import pytest

from aistrata.store import Database, migrate


@pytest.fixture
def db(database: Database) -> Database:
    """`database` with the full schema."""
    migrate(database)
    return database
