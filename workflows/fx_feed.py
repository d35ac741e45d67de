"""The FX feed (run by the `fx-feed` Temporal Schedule): one read of the configured MT5 symbols'
last quotes, each fresh one stored as an FX rate with its source and its own time. A read that
fails after its few attempts fails this run only; the schedule's next run reads again."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts import fx_feed
    from contracts.fx_feed import FX_FEED, FxFeedInput, StoredFxQuotes, StoreFxQuotes

__all__ = ["FxFeedWorkflow"]


@workflow.defn(name=FX_FEED.name)
class FxFeedWorkflow:
    @workflow.run
    async def run(self, request: FxFeedInput) -> StoredFxQuotes:
        if not request.symbols:
            return StoredFxQuotes()
        result = await fx_feed.store_fx_quotes(
            request.server,
            StoreFxQuotes(
                server=request.server,
                symbols=request.symbols,
                server_clock_offset=request.server_clock_offset,
                max_age=request.max_age,
            ),
        )
        if result.stale or result.unknown:
            workflow.logger.warning(
                "FX feed on %s: not stored, too old or ahead %s, unknown to MT5 %s",
                request.server,
                result.stale,
                result.unknown,
            )
        return result
