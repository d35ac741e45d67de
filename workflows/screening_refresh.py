"""A new sanctions or PEP list: load it as the active list of its source, re-screen every
client against the active lists, and open a LIST_CHANGE case for each new potential match.

1. load the uploaded file (kept in the document store), parse it, store its parties once (by
   digest) and make it the active list of its source;
2. re-screen clients whose KYC is approved or pending, a batch at a time, in id order;
3. for each client with a potential match none of their cases holds yet, open a case (unless
   one is open already) and start its review, which outlives this workflow.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts import screening_refresh as refresh
    from contracts.screening_refresh import (
        SCREENING_REFRESH,
        OpenCasesInput,
        RescreenInput,
        ScreeningRefreshInput,
        ScreeningRefreshResult,
    )

# Checked by the workflow sandbox like this module (not passed through): workflow code.
from workflows.kyc_review import start_case_reviews

__all__ = ["ScreeningListRefreshWorkflow"]


@workflow.defn(name=SCREENING_REFRESH.name)
class ScreeningListRefreshWorkflow:
    @workflow.run
    async def run(self, request: ScreeningRefreshInput) -> ScreeningRefreshResult:
        loaded = await refresh.load_screening_list(request)
        batches = opened = 0
        after = None
        while True:
            batch = await refresh.rescreen_clients(
                RescreenInput(list_id=loaded.list_id, after=after)
            )
            batches += 1
            if batch.flagged:
                cases = await refresh.open_list_change_cases(
                    OpenCasesInput(client_ids=batch.flagged, key=request.digest)
                )
                opened += await start_case_reviews(cases.cases, request.sla)
            if batch.next_after is None:
                break
            after = batch.next_after
        return ScreeningRefreshResult(
            list_id=loaded.list_id, clients_screened_batches=batches, cases_opened=opened
        )
