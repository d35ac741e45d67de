"""Dealer-plugin revenue (run by a Temporal Schedule): one step; a run that fails after its
attempts fails alone, the next run starts from the same cursor."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts import dealer_revenue
    from contracts.dealer_revenue import (
        DEALER_REVENUE,
        DealerRevenueComputed,
        DealerRevenueInput,
    )

__all__ = ["DealerRevenueWorkflow"]


@workflow.defn(name=DEALER_REVENUE.name)
class DealerRevenueWorkflow:
    @workflow.run
    async def run(self, request: DealerRevenueInput) -> DealerRevenueComputed:
        return await dealer_revenue.refresh_dealer_revenue(request)
