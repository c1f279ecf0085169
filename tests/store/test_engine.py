from __future__ import annotations

from sqlalchemy import inspect

from shipyard.runtime import Platform
from shipyard.store.models import Base


def test_migrations_create_every_table(platform: Platform) -> None:
    tables = set(inspect(platform.db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
