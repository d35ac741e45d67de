"""`python -m db.migrate`: bring the schema to head and give the app role its password."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, pool, text

from db.embedded import owner_database_url
from settings import Settings, get_settings

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")


def upgrade(owner_url: str, settings: Settings) -> None:
    config = Config(str(ALEMBIC_INI))
    config.attributes["url"] = owner_url
    command.upgrade(config, "head")
    if settings.database_app_password is not None:
        engine = create_engine(owner_url, poolclass=pool.NullPool)
        with engine.begin() as connection:
            # ALTER ROLE takes no bind parameters; quote the literal through the server itself.
            literal = connection.execute(
                text("SELECT quote_literal(:pw)"),
                {"pw": settings.database_app_password.get_secret_value()},
            ).scalar_one()
            connection.execute(
                text(f'ALTER ROLE "{settings.database_app_role}" WITH LOGIN PASSWORD {literal}')
            )
        engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    settings = get_settings()
    upgrade(owner_database_url(settings), settings)
    logging.getLogger(__name__).info("database schema is at head")


if __name__ == "__main__":
    main()
