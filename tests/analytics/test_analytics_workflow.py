"""The `Analytics` workflow on the session's Temporal dev server, its one step replaced by a fake
registered under the step's name: the input reaches the step whole (servers, a back-fill's
days), the step's answer is the workflow's; a step that fails for good fails the run (the
schedule's next run starts again from the watermark)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.analytics import ANALYTICS, AggregatesRefreshed, AnalyticsInput, RefreshAggregates
from workflows.analytics import AnalyticsWorkflow


async def run(
    env: WorkflowEnvironment, request: AnalyticsInput, fail: bool = False
) -> tuple[AggregatesRefreshed, list[RefreshAggregates]]:
    seen: list[RefreshAggregates] = []

    @activity.defn(name="refresh_aggregates")
    async def refresh_aggregates(step: RefreshAggregates) -> AggregatesRefreshed:
        seen.append(step)
        if fail:
            raise ApplicationError("the database refused", type="Broken", non_retryable=True)
        return AggregatesRefreshed(
            days={server: "2026-12-01..2026-12-02" for server in step.servers},
            rows={server: 7 for server in step.servers},
        )

    queue = f"analytics-{uuid.uuid4()}"
    async with Worker(
        env.client, task_queue=queue, workflows=[AnalyticsWorkflow], activities=[refresh_aggregates]
    ):
        result: AggregatesRefreshed = await env.client.execute_workflow(
            ANALYTICS.name,
            request,
            id=f"analytics-test-{uuid.uuid4()}",
            task_queue=queue,
            result_type=AggregatesRefreshed,
            execution_timeout=timedelta(seconds=30),
        )
    return result, seen


async def test_the_refresh_gets_the_request_and_answers_for_the_run(
    temporal_env: WorkflowEnvironment,
) -> None:
    request = AnalyticsInput(
        servers=["live-1", "live-2"], first=date(2026, 12, 1), last=date(2026, 12, 2)
    )
    result, seen = await run(temporal_env, request)
    assert seen == [
        RefreshAggregates(
            servers=["live-1", "live-2"], first=date(2026, 12, 1), last=date(2026, 12, 2)
        )
    ]
    assert result.rows == {"live-1": 7, "live-2": 7}
    assert result.days["live-2"] == "2026-12-01..2026-12-02"


async def test_a_step_that_fails_for_good_fails_the_run(
    temporal_env: WorkflowEnvironment,
) -> None:
    with pytest.raises(WorkflowFailureError) as failed:
        await run(temporal_env, AnalyticsInput(), fail=True)
    step = failed.value.cause
    assert isinstance(step, ActivityError) and isinstance(step.cause, ApplicationError)
    assert step.cause.type == "Broken"
