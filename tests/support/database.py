"""A real PostgreSQL for tests: one embedded cluster per run, one fresh database per test.

The schema is migrated once into a template database; each test gets `CREATE DATABASE ...
TEMPLATE`, so tests never see each other's rows. A copy still costs a fifth of a second or so
(PostgreSQL writes the template's pages through its WAL), which ~330 tests paid one after the
other: `DatabasePool` makes the next copies in a background thread while a test runs (the server
does the work, on the other core) and drops used ones there too. Each test still gets a database
no other test has touched.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from dataclasses import dataclass

from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url

TEMPLATE = "brokerflow_template"

# A throwaway cluster: nothing in it has to survive a crash of the machine, so commits and
# database copies need not wait for the disk. What a transaction sees, and when, is unchanged
# (no test crashes PostgreSQL itself; the chaos tests kill the worker and the API).
TEST_SERVER_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}

# One CREATE DATABASE from the template at a time (the pool's thread and a test's own).
_COPYING = threading.Lock()


@dataclass(frozen=True)
class ProvisionedDatabase:
    owner_url: str
    name: str


def database_url(cluster_url: str, name: str) -> str:
    return make_url(cluster_url).set(database=name).render_as_string(hide_password=False)


def _admin(cluster_url: str):  # type: ignore[no-untyped-def]
    return create_engine(cluster_url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")


def tune_for_tests(cluster_url: str) -> None:
    """Apply TEST_SERVER_SETTINGS to the running cluster (all are reloadable, no restart)."""
    engine = _admin(cluster_url)
    with engine.connect() as connection:
        for name, value in TEST_SERVER_SETTINGS.items():
            connection.execute(text(f"ALTER SYSTEM SET {name} = {value}"))
        connection.execute(text("SELECT pg_reload_conf()"))
    engine.dispose()


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
    with _COPYING, engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"'))
    engine.dispose()
    return ProvisionedDatabase(database_url(cluster_url, name), name)


def drop_database(cluster_url: str, database: ProvisionedDatabase) -> None:
    engine = _admin(cluster_url)
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)'))
    engine.dispose()


class DatabasePool:
    """Fresh template copies made ahead, and used ones dropped, by one background thread.

    `take` hands out a database created from the template and never given to anyone before;
    `give_back` queues it for dropping. Only the timing moves off the test's path: a copy that
    fails is that test's error (raised by its `take`), a drop that fails is the session's (raised
    by `close`), as when each test made and dropped its own."""

    def __init__(self, cluster_url: str, ahead: int = 2) -> None:
        self.cluster_url = cluster_url
        self.ahead = ahead
        self._ready: deque[ProvisionedDatabase | BaseException] = deque()
        self._used: deque[ProvisionedDatabase] = deque()
        self._drop_errors: list[BaseException] = []
        self._closing = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="test-databases", daemon=True)
        self._thread.start()

    def take(self) -> ProvisionedDatabase:
        with self._changed:
            while not self._ready:
                self._changed.wait()
            made = self._ready.popleft()
            self._changed.notify_all()
        if isinstance(made, BaseException):
            raise RuntimeError("could not copy the template database") from made
        return made

    def give_back(self, database: ProvisionedDatabase) -> None:
        with self._changed:
            self._used.append(database)
            self._changed.notify_all()

    def close(self) -> None:
        """Stop making copies, drop the used and the unused ones, and wait for the thread."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(120)
        if self._drop_errors:
            raise RuntimeError("could not drop test databases") from self._drop_errors[0]

    def _next_job(self) -> tuple[str, ProvisionedDatabase | None] | None:
        with self._changed:
            while True:
                # Keeping `ahead` copies ready first (a test may be waiting), then dropping.
                if not self._closing and len(self._ready) < self.ahead:
                    return "create", None
                if self._used:
                    return "drop", self._used.popleft()
                if self._closing:
                    while self._ready:
                        unused = self._ready.popleft()
                        if isinstance(unused, ProvisionedDatabase):
                            return "drop", unused
                    return None
                self._changed.wait()

    def _run(self) -> None:
        while (job := self._next_job()) is not None:
            what, database = job
            if what == "create":
                made: ProvisionedDatabase | BaseException
                try:
                    made = create_database(self.cluster_url)
                except BaseException as exc:  # the next test's error
                    made = exc
                with self._changed:
                    self._ready.append(made)
                    self._changed.notify_all()
            else:
                assert database is not None
                try:
                    drop_database(self.cluster_url, database)
                except BaseException as exc:  # the session's error, at `close`
                    self._drop_errors.append(exc)
