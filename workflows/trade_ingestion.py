"""Trade ingestion, per MT5 server: the live follower and the back-fill of a past range.

The follower's poll loop runs inside `follow_deals` (a heartbeating activity of about a minute),
not as a timer per poll: at 1,000 deals/s and a few polls a second, an activity and a timer per
poll would write ~30 history events a second; one activity a minute writes three. The watermark
lives in `ingestion_state`, committed with the deals, so the workflow only counts its runs and
continues as new after `runs_per_history`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.trade_ingestion import (
        DEAL_BACKFILL,
        TRADE_INGESTION,
        BackfillInput,
        CopiedDeals,
        DealRange,
        FollowDeals,
        FollowTradeState,
        IngestionInput,
        copy_deal_range,
        follow_deals,
        follow_trade_state,
    )

TRADE_STATE_PATCH = "trade-state"


@workflow.defn(name=TRADE_INGESTION.name)
class TradeIngestionWorkflow:
    @workflow.run
    async def run(self, request: IngestionInput) -> None:
        for _ in range(request.runs_per_history):
            deals = follow_deals(
                request.server,
                FollowDeals(start_from=request.start_from, run_seconds=request.run_seconds),
            )
            # Runs recorded before positions, orders and account states were read took only
            # `follow_deals`; they replay as they ran.
            if workflow.patched(TRADE_STATE_PATCH):
                await asyncio.gather(
                    deals,
                    follow_trade_state(
                        request.server,
                        FollowTradeState(
                            start_from=request.start_from, run_seconds=request.run_seconds
                        ),
                    ),
                )
            else:
                await deals
        workflow.continue_as_new(request)


@workflow.defn(name=DEAL_BACKFILL.name)
class DealBackfillWorkflow:
    @workflow.run
    async def run(self, request: BackfillInput) -> CopiedDeals:
        if request.parts <= 1:
            return await copy_deal_range(
                request.server, DealRange(since=request.since, until=request.until)
            )
        children = [
            DEAL_BACKFILL.run_as_child(
                BackfillInput(server=request.server, since=since, until=until, parts=1),
                id=f"{workflow.info().workflow_id}-{index}",
            )
            for index, (since, until) in enumerate(split(request))
        ]
        copied = await asyncio.gather(*children)
        return CopiedDeals(
            deals=sum(c.deals for c in copied),
            windows=sum(c.windows for c in copied),
            orders=sum(c.orders for c in copied),
        )


def split(request: BackfillInput) -> list[tuple[datetime, datetime]]:
    """`request`'s range as `parts` back-to-back ranges of whole seconds (the server's windows
    are inclusive seconds: a part ends a second before the next begins)."""
    since = request.since.replace(microsecond=0)
    seconds = int((request.until - since).total_seconds())
    step = max(1, -(-seconds // request.parts))
    ranges: list[tuple[datetime, datetime]] = []
    start = 0
    while start <= seconds:
        end = start + step - 1
        last = end >= seconds
        ranges.append(
            (
                since + timedelta(seconds=start),
                request.until if last else since + timedelta(seconds=end),
            )
        )
        start = end + 1
    return ranges
