"""The worker's engine does not ping a connection before each step (`ping_on_checkout=False`):
that is safe only because a connection the server dropped fails one attempt and the next
attempt, as a retried step makes, gets a fresh one. This checks that premise on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from db.session import create_engine
from tests.support import database


async def test_a_dropped_connection_fails_one_attempt_and_the_next_gets_a_fresh_one(
    test_db: database.ProvisionedDatabase,
) -> None:
    engine = create_engine(test_db.owner_url, pool_size=1, ping_on_checkout=False)
    admin = create_engine(test_db.owner_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            dropped = await connection.scalar(text("SELECT pg_backend_pid()"))
        async with admin.connect() as connection:
            assert await connection.scalar(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped}
            )

        with pytest.raises(DBAPIError) as failed:
            async with engine.connect() as connection:
                await connection.scalar(text("SELECT 1"))
        assert failed.value.connection_invalidated

        async with engine.connect() as connection:
            fresh = await connection.scalar(text("SELECT pg_backend_pid()"))
        assert fresh != dropped
    finally:
        await engine.dispose()
        await admin.dispose()
