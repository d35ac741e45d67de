"""Several MT5 servers: each its own queue, so a slow one never stalls another; failover between
access servers; a client-side request ceiling."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from contracts import TASK_QUEUE
from contracts.account_opening import AccountOpeningInput
from db.models import AccountApplication
from db.models import Client as ClientRow
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.onboarding import AccountType
from mt5_adapter.gateway import Mt5Gateway
from mt5_adapter.webapi import gateway_for
from settings import Settings
from tests.conftest import FLEET_NAMESPACE, make_settings, mt5_settings_for
from tests.e2e.helpers import simulator_users
from tests.support.database import ProvisionedDatabase
from tests.support.processes import Simulator, free_port, start_simulator
from worker import build_workers
from workflows.account_opening import AccountOpeningWorkflow


@pytest.fixture
def two_simulators(artifacts_dir: Path) -> Iterator[tuple[Simulator, Simulator]]:
    first = start_simulator(artifacts_dir / "logs", tls=False)
    second = start_simulator(artifacts_dir / "logs", tls=False)
    yield first, second
    first.child.stop()
    second.child.stop()


async def test_failover_to_a_backup_access_server(mt5_sim: Simulator) -> None:
    dead = f"127.0.0.1:{free_port()}"
    settings = mt5_settings_for(mt5_sim).model_copy(
        update={"address": dead, "backup_addresses": [mt5_sim.address]}
    )
    gateway = gateway_for(settings)
    try:
        await gateway.ping()
        await gateway.ping()
    finally:
        await gateway.aclose()


async def test_requests_are_paced_under_the_ceiling(mt5_sim: Simulator) -> None:
    settings = mt5_settings_for(mt5_sim).model_copy(update={"max_requests_per_second": 20.0})
    gateway = gateway_for(settings)
    try:
        await gateway.ping()  # logs in (three requests)
        started = time.monotonic()
        for _ in range(10):
            await gateway.ping()
        assert time.monotonic() - started >= 9 / 20
    finally:
        await gateway.aclose()


@pytest.fixture
async def fleet(
    test_db: ProvisionedDatabase,
    temporal_env: WorkflowEnvironment,
    two_simulators: tuple[Simulator, Simulator],
) -> AsyncIterator[tuple[Settings, Client, async_sessionmaker[AsyncSession]]]:
    slow, fast = two_simulators
    settings = make_settings(
        test_db.owner_url,
        mt5=mt5_settings_for(slow, name="live-1"),
        mt5_servers=[mt5_settings_for(fast, name="live-2")],
    )
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host,
        namespace=FLEET_NAMESPACE,
        data_converter=temporal_env.client.data_converter,
    )
    engine = create_engine(app_database_url(test_db.owner_url, settings), pool_size=4)
    sessions = create_sessionmaker(engine)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        gateways: dict[str, Mt5Gateway] = {}
        for server in settings.mt5_fleet():
            gateways[server.name] = gateway_for(server)
            stack.push_async_callback(gateways[server.name].aclose)
        for worker in build_workers(
            client, sessions, SecretBox(settings.secrets_key), gateways, settings.mt5_fleet()
        ):
            await stack.enter_async_context(worker)
        yield settings, client, sessions


async def application_on(
    sessions: async_sessionmaker[AsyncSession], server: str
) -> AccountOpeningInput:
    client_id, application_id = uuid.uuid4(), uuid.uuid4()
    async with sessions.begin() as session:
        session.add(
            ClientRow(
                id=client_id,
                email=f"{client_id.hex[:8]}@example.com",
                password_hash="x",
                full_name="Fleet Client",
                country="CY",
                date_of_birth=date(1975, 5, 5),
            )
        )
        await session.flush()
        session.add(
            AccountApplication(
                id=application_id,
                client_id=client_id,
                account_type="standard",
                workflow_id=f"account-opening-{application_id}",
                mt5_server=server,
            )
        )
    return AccountOpeningInput(
        application_id=application_id,
        client_id=client_id,
        account_type=AccountType.STANDARD,
        mt5_server=server,
    )


async def test_a_slow_server_does_not_stall_another(
    fleet: tuple[Settings, Client, async_sessionmaker[AsyncSession]],
    two_simulators: tuple[Simulator, Simulator],
) -> None:
    _, client, sessions = fleet
    slow, fast = two_simulators
    slow.inject_faults({"path": "/api/user/add", "mode": "latency", "latency_ms": 4000})

    async def open_on(server: str) -> int:
        request = await application_on(sessions, server)
        result = await client.execute_workflow(
            AccountOpeningWorkflow.run,
            request,
            id=f"account-opening-{request.application_id}",
            task_queue=TASK_QUEUE,
        )
        return result.login

    slow_opening = asyncio.create_task(open_on("live-1"))
    await asyncio.sleep(0.5)
    fast_login = await open_on("live-2")
    assert not slow_opening.done(), "the fast server waited for the slow one"
    slow_login = await asyncio.wait_for(slow_opening, 30)

    assert [int(u["Login"]) for u in simulator_users(fast.base_url)] == [fast_login]
    assert [int(u["Login"]) for u in simulator_users(slow.base_url)] == [slow_login]
