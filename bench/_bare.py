"""The baseline: a workflow of no-op activities, in a module the workflow sandbox can import."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_noop")
async def noop(step: int) -> int:
    return step


@workflow.defn(name="BenchBare")
class BareWorkflow:
    @workflow.run
    async def run(self, steps: int) -> None:
        for step in range(steps):
            await workflow.execute_activity(
                "bench_noop", step, start_to_close_timeout=timedelta(seconds=10)
            )
