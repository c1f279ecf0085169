from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from shipyard.runtime import Platform
from shipyard.store.migrate import alembic_config, upgrade
from shipyard.store.models import Base


def test_the_migration_head_matches_the_models(platform: Platform) -> None:
    with platform.db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_the_database_is_at_the_single_head(platform: Platform) -> None:
    script = ScriptDirectory.from_config(alembic_config(platform.db.engine))
    heads = script.get_heads()
    assert len(heads) == 1
    with platform.db.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_heads() == tuple(heads)


def test_upgrading_again_changes_nothing(platform: Platform) -> None:
    before = sorted(inspect(platform.db.engine).get_table_names())
    upgrade(platform.db.engine)
    assert sorted(inspect(platform.db.engine).get_table_names()) == before
    with platform.db.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
