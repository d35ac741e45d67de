"""The worker's Temporal SDK metrics reach Prometheus: a step that keeps failing shows as a
growing failure count, which is what an alert on endless retries watches."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tests.support.processes import free_port
from tests.support.waiting import eventually
from worker import temporal_runtime

ATTEMPTS = 3


@activity.defn(name="always_refused_for_now")
async def always_refused_for_now() -> None:
    raise RuntimeError("the trade server is not answering")


@workflow.defn(name="RetriesThreeTimes")
class RetriesThreeTimes:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            always_refused_for_now,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=10), maximum_attempts=ATTEMPTS
            ),
        )


def failures_in(page: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in page.splitlines()
        if line.startswith("temporal_activity_execution_failed")
        and 'activity_type="always_refused_for_now"' in line
    )


async def test_retried_failures_are_counted_on_the_metrics_endpoint(
    temporal_env: WorkflowEnvironment,
) -> None:
    assert temporal_runtime(None) is None
    address = f"127.0.0.1:{free_port()}"
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host,
        data_converter=pydantic_data_converter,
        runtime=temporal_runtime(address),
    )
    queue = f"metrics-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[RetriesThreeTimes],
        activities=[always_refused_for_now],
        # This module imports the worker and httpx, which the sandbox would refuse to re-import.
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await client.start_workflow(RetriesThreeTimes.run, id=queue, task_queue=queue)
        try:
            await handle.result()
        except Exception:  # the workflow fails once its three attempts are spent
            pass
        async with httpx.AsyncClient() as http:

            async def failures_counted() -> float:
                page = (await http.get(f"http://{address}/metrics")).text
                return failures_in(page) if failures_in(page) >= ATTEMPTS else 0

            counted = await eventually(failures_counted, f"{ATTEMPTS} failures on /metrics", 30)
    assert counted == ATTEMPTS
