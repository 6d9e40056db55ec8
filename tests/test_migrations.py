"""The Alembic migrations build exactly the schema the models declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from storage.db import alembic_config
from storage.models import Base
from storage.search import SEARCH_COLUMNS, SEARCH_INDEXES, SEARCH_TABLES


def _declared(name, kind, _parent):  # type: ignore[no-untyped-def]
    """The full-text index (FTS5 tables on SQLite, a tsvector column with a GIN index on
    PostgreSQL) is made by its migration, not declared as models; everything else is."""
    if kind == "table":
        return not name.startswith(SEARCH_TABLES)
    if kind == "column":
        return name not in SEARCH_COLUMNS
    return not (kind == "index" and name in SEARCH_INDEXES)


def test_one_linear_history():
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


async def test_migrated_schema_matches_the_models(app):
    def differences(connection):
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": _declared}
        )
        return compare_metadata(context, Base.metadata)

    async with app.db.engine.connect() as conn:
        diff = await conn.run_sync(differences)
    assert diff == []


async def test_migrate_twice_is_harmless(app):
    await app.db.migrate()
    script = ScriptDirectory.from_config(alembic_config())
    assert await app.db.revision() == script.get_current_head()
