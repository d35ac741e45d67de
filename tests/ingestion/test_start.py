"""The worker starts each server's follower at start-up, and a second start finds it running."""

from __future__ import annotations

import uuid

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from contracts.trade_ingestion import trade_ingestion_workflow_id
from schedules import ensure_trade_ingestion
from settings import Mt5ServerSettings, Settings


async def test_one_follower_per_server_however_often_started(
    temporal_env: WorkflowEnvironment,
) -> None:
    client = temporal_env.client
    names = [f"start-{uuid.uuid4().hex[:6]}", f"start-{uuid.uuid4().hex[:6]}"]
    settings = Settings(
        env="test",
        mt5=Mt5ServerSettings(name=names[0]),
        mt5_servers=[Mt5ServerSettings(name=names[1])],
        _env_file=None,
    )
    await ensure_trade_ingestion(client, settings)
    first = [
        await client.get_workflow_handle(trade_ingestion_workflow_id(n)).describe() for n in names
    ]
    await ensure_trade_ingestion(client, settings)  # as at the next worker start
    for name, described in zip(names, first, strict=True):
        handle = client.get_workflow_handle(trade_ingestion_workflow_id(name))
        again = await handle.describe()
        assert again.run_id == described.run_id
        assert again.status == WorkflowExecutionStatus.RUNNING
        await handle.terminate()
