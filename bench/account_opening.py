"""Account openings per second end to end, against a bare workflow doing the same number of no-op
activities on the same Temporal server (the ratio is what BrokerFlow's own work costs).

    python -m bench.account_opening --size 100

Runs on embedded defaults: a throw-away PostgreSQL, the Temporal dev server, the MT5 simulator
as a separate process, the worker in-process, and the API in-process over ASGI.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import pool, text
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from bench._bare import BareWorkflow, noop
from bench._people import bench_applicant
from bench._simulator import start_simulator
from db.embedded import embedded_owner_url
from db.migrate import upgrade
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from mt5_adapter.webapi import gateway_for
from settings import Mt5ServerSettings, Settings
from worker import build_workers

BIN = Path(sys.executable).parent
STEPS = 4  # reserve login, create user, credit deposit, record account


async def bare_rate(env: WorkflowEnvironment, size: int) -> float:
    queue = f"bench-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[BareWorkflow], activities=[noop]):
        started = time.perf_counter()
        handles = [
            await env.client.start_workflow(
                BareWorkflow.run, STEPS, id=f"bare-{uuid.uuid4()}", task_queue=queue
            )
            for _ in range(size)
        ]
        await asyncio.gather(*(h.result() for h in handles))
        return size / (time.perf_counter() - started)


async def opening_rate(
    env: WorkflowEnvironment, settings: Settings, size: int
) -> tuple[float, list[float]]:
    assert settings.database_url
    engine = create_engine(app_database_url(settings.database_url, settings))
    gateway = gateway_for(settings.mt5)
    latencies: list[float] = []
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        stack.push_async_callback(gateway.aclose)
        for worker in build_workers(
            env.client,
            create_sessionmaker(engine),
            SecretBox(settings.secrets_key),
            {"demo": gateway},
            [settings.mt5],
        ):
            await stack.enter_async_context(worker)
        app = create_app(settings)
        await stack.enter_async_context(app.router.lifespan_context(app))
        api = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 1)),
                base_url="http://bench",
            )
        )

        async def one(index: int) -> None:
            begun = time.perf_counter()
            response = await api.post(
                "/v1/signup",
                json=bench_applicant("Bench-Password-1"),
            )
            response.raise_for_status()
            handle = env.client.get_workflow_handle(
                f"account-opening-{response.json()['application_id']}"
            )
            await handle.result()
            latencies.append(time.perf_counter() - begun)

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(size)))
        return size / (time.perf_counter() - started), latencies


def bench_database(folder: Path) -> str:
    owner = embedded_owner_url(folder / "pg", stop_at_exit=True)
    engine = create_sync_engine(owner, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("CREATE DATABASE bench"))
    return owner.replace("/postgres?", "/bench?")


async def main(size: int, owner: str, simulator_port: int) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), data_converter=pydantic_data_converter
    )
    try:
        settings = Settings(
            env="test",
            database_url=owner,
            temporal_address=env.client.service_client.config.target_host,
            mt5=Mt5ServerSettings(address=f"127.0.0.1:{simulator_port}", tls=False),
            log_json=False,
        )
        upgrade(owner, settings)
        await bare_rate(env, min(size, 10))  # warm-up
        bare = await bare_rate(env, size)
        rate, latencies = await opening_rate(env, settings, size)
    finally:
        await env.shutdown()
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"RESULT openings_per_s={rate:.1f} bare_workflows_per_s={bare:.1f} "
        f"ratio_to_bare={rate / bare:.2f} p50_ms={cuts[49] * 1000:.0f} "
        f"p99_ms={cuts[98] * 1000:.0f} size={size}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=100, help="account openings to run")
    size = parser.parse_args().size
    with tempfile.TemporaryDirectory(prefix="bf-bench-") as folder:
        database = bench_database(Path(folder))
        simulator, port = start_simulator()
        try:
            asyncio.run(main(size, database, port))
        finally:
            simulator.terminate()
