"""Engines and sessions. Callers own them: nothing here is a module-level global."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db.embedded import to_psycopg_url


def create_engine(url: str, *, pool_size: int = 10, ping_on_checkout: bool = True) -> AsyncEngine:
    """`ping_on_checkout`: test each pooled connection with a round trip before handing it out,
    so a connection the server dropped (a restart, an idle timeout) fails no request. A caller
    whose every use is retried (the worker's steps) can do without: the first use of a dropped
    connection fails its attempt, SQLAlchemy takes it as a disconnect and empties the pool, and
    the retry gets a fresh connection."""
    return create_async_engine(
        to_psycopg_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=ping_on_checkout,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
