"""The migrations and the ORM models describe the same schema: a column added to one and not
the other is caught here rather than by a failing insert in production."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, pool

from db.base import Base
from db.models import __all__ as _models  # noqa: F401  (registers every table)
from tests.support import database


def test_migrated_schema_equals_the_models(test_db: database.ProvisionedDatabase) -> None:
    engine = create_engine(
        test_db.owner_url.replace("+psycopg_async", "+psycopg"), poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": False}
        )
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []
