"""A new sanctions or PEP list: load it as the active list of its source, re-screen every
client against the active lists, and open a LIST_CHANGE case for each new potential match.

1. load the uploaded file (kept in the document store), parse it, store its parties once (by
   digest) and make it the active list of its source;
2. re-screen clients whose KYC is approved or pending, a batch at a time, in id order;
3. for each client with a potential match none of their cases holds yet, open a case (unless
   one is open already) and start its review, which outlives this workflow.

After `batches_per_run` batches the run continues as new with its progress (the list is not
loaded again), so a refresh over millions of clients never outgrows one history.
"""

from __future__ import annotations

import itertools

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts import screening_refresh as refresh
    from contracts.screening_refresh import (
        SCREENING_REFRESH,
        OpenCasesInput,
        RefreshProgress,
        RescreenInput,
        ScreeningRefreshInput,
        ScreeningRefreshResult,
    )

# Checked by the workflow sandbox like this module (not passed through): workflow code.
from workflows.kyc_review import start_case_reviews

__all__ = ["ScreeningListRefreshWorkflow"]

# `workflow.patched` id: since this change a run continues as new after `batches_per_run`
# batches. A refresh that had screened more batches than that before it replays the old way.
CONTINUE_AS_NEW = "screening-refresh-continue-as-new"


@workflow.defn(name=SCREENING_REFRESH.name)
class ScreeningListRefreshWorkflow:
    @workflow.run
    async def run(self, request: ScreeningRefreshInput) -> ScreeningRefreshResult:
        progress = request.progress
        if progress is None:
            loaded = await refresh.load_screening_list(request)
            list_id, after, batches, opened = loaded.list_id, None, 0, 0
        else:
            list_id, after = progress.list_id, progress.after
            batches, opened = progress.batches, progress.cases_opened
        for screened_in_this_run in itertools.count(1):
            batch = await refresh.rescreen_clients(RescreenInput(list_id=list_id, after=after))
            batches += 1
            if batch.flagged:
                cases = await refresh.open_list_change_cases(
                    OpenCasesInput(client_ids=batch.flagged, key=request.digest)
                )
                opened += await start_case_reviews(cases.cases, request.sla)
            if batch.next_after is None:
                break
            after = batch.next_after
            if screened_in_this_run >= request.batches_per_run and workflow.patched(
                CONTINUE_AS_NEW
            ):
                progress = RefreshProgress(
                    list_id=list_id, after=after, batches=batches, cases_opened=opened
                )
                workflow.continue_as_new(request.model_copy(update={"progress": progress}))
        return ScreeningRefreshResult(
            list_id=list_id, clients_screened_batches=batches, cases_opened=opened
        )
