"""Alembic runs synchronously over psycopg 3; the URL comes from `db.migrate`, never from a file."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import db.models  # noqa: F401  (registers every table on the metadata)
from db.base import Base

url = context.config.attributes.get("url") or context.config.get_main_option("sqlalchemy.url")
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
