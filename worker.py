"""The Temporal worker: the one place where workflows, activities and their dependencies meet.

One process serves the main task queue (workflows and database steps) and one queue per MT5
server (that server's MT5 steps). Scale out by running more of these, or by running a worker
per MT5 queue.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from contextlib import AsyncExitStack

from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.account_opening import AccountOpeningRecords, Mt5AccountSteps
from db.embedded import owner_database_url
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from mt5_adapter.gateway import Mt5Gateway
from mt5_adapter.webapi import gateway_for
from observability.logging import configure_logging
from observability.tracing import configure_tracing
from settings import Mt5ServerSettings, Settings, get_settings
from workflows import TASK_QUEUE, mt5_task_queue
from workflows.account_opening import WORKFLOWS

log = logging.getLogger("brokerflow.worker")


def build_workers(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    box: SecretBox,
    gateways: dict[str, Mt5Gateway],
    mt5_servers: Sequence[Mt5ServerSettings],
) -> list[Worker]:
    records = AccountOpeningRecords(
        sessions,
        box,
        {server.name: (server.login_range_start, server.login_range_end) for server in mt5_servers},
    )
    workers = [
        Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=WORKFLOWS,
            activities=[
                records.reserve_mt5_login,
                records.record_mt5_account,
                records.mark_application_failed,
            ],
        )
    ]
    for server in mt5_servers:
        steps = Mt5AccountSteps(sessions, box, gateways[server.name])
        workers.append(
            Worker(
                client,
                task_queue=mt5_task_queue(server.name),
                activities=[
                    steps.create_mt5_user,
                    steps.delete_mt5_user_if_ours,
                    steps.credit_demo_deposit,
                ],
                # MT5 serves one request per manager connection at a time: keep the queue short.
                max_concurrent_activities=8,
            )
        )
    return workers


async def run(settings: Settings, stop: asyncio.Event) -> None:
    configure_tracing("brokerflow-worker", settings)
    HTTPXClientInstrumentor().instrument()
    engine = create_engine(app_database_url(owner_database_url(settings), settings))
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
    client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        interceptors=[TracingInterceptor()],
    )
    servers = settings.mt5_fleet()
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        gateways: dict[str, Mt5Gateway] = {}
        for server in servers:
            gateway = gateway_for(server.opened(settings.secrets_key))
            stack.push_async_callback(gateway.aclose)
            gateways[server.name] = gateway
        workers = build_workers(
            client, create_sessionmaker(engine), SecretBox(settings.secrets_key), gateways, servers
        )
        for worker in workers:
            await stack.enter_async_context(worker)
        log.info("worker running on task queues %s", [w.task_queue for w in workers])
        await stop.wait()
        log.info("worker stopping")


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
