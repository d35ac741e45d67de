"""The reporting aggregates' refresh (run by the `analytics` Temporal Schedule): one step; a run
that fails after its attempts fails alone, the schedule's next run starts from the same
watermark."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts import analytics
    from contracts.analytics import (
        ANALYTICS,
        AggregatesRefreshed,
        AnalyticsInput,
        RefreshAggregates,
    )

__all__ = ["AnalyticsWorkflow"]


@workflow.defn(name=ANALYTICS.name)
class AnalyticsWorkflow:
    @workflow.run
    async def run(self, request: AnalyticsInput) -> AggregatesRefreshed:
        return await analytics.refresh_aggregates(
            RefreshAggregates(servers=request.servers, first=request.first, last=request.last)
        )
