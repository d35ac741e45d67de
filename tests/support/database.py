"""A real PostgreSQL for tests: one embedded cluster per run, one fresh database per test.

The schema is migrated once into a template database; each test gets `CREATE DATABASE ...
TEMPLATE`, which is a file copy and takes milliseconds, so tests never see each other's rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url

TEMPLATE = "brokerflow_template"


@dataclass(frozen=True)
class ProvisionedDatabase:
    owner_url: str
    name: str


def database_url(cluster_url: str, name: str) -> str:
    return make_url(cluster_url).set(database=name).render_as_string(hide_password=False)


def _admin(cluster_url: str):  # type: ignore[no-untyped-def]
    return create_engine(cluster_url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")


def create_template(cluster_url: str) -> None:
    from db.migrate import upgrade
    from settings import Settings

    engine = _admin(cluster_url)
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{TEMPLATE}"'))
        connection.execute(text(f'CREATE DATABASE "{TEMPLATE}"'))
    engine.dispose()
    upgrade(database_url(cluster_url, TEMPLATE), Settings(env="test"))


def create_database(cluster_url: str, prefix: str = "t") -> ProvisionedDatabase:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = _admin(cluster_url)
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"'))
    engine.dispose()
    return ProvisionedDatabase(database_url(cluster_url, name), name)


def drop_database(cluster_url: str, database: ProvisionedDatabase) -> None:
    engine = _admin(cluster_url)
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)'))
    engine.dispose()
