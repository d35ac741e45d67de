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
    from domain.kyc_flow import (
        SCREENING_REFRESH_WORKFLOW,
        KycStep,
        LoadedList,
        OpenCasesInput,
        OpenedCases,
        RescreenBatch,
        RescreenInput,
        ScreeningRefreshInput,
        ScreeningRefreshResult,
        screening_refresh_workflow_id,
    )
    from workflows import policies
    from workflows.kyc_review import db_step, start_case_reviews

__all__ = ["ScreeningListRefreshWorkflow", "screening_refresh_workflow_id"]


@workflow.defn(name=SCREENING_REFRESH_WORKFLOW)
class ScreeningListRefreshWorkflow:
    @workflow.run
    async def run(self, request: ScreeningRefreshInput) -> ScreeningRefreshResult:
        loaded: LoadedList = await workflow.execute_activity(
            KycStep.LOAD_SCREENING_LIST,
            request,
            start_to_close_timeout=policies.BULK_TIMEOUT,
            retry_policy=policies.DATABASE,
            result_type=LoadedList,
        )
        batches = opened = 0
        after = None
        while True:
            batch: RescreenBatch = await workflow.execute_activity(
                KycStep.RESCREEN_CLIENTS,
                RescreenInput(list_id=loaded.list_id, after=after),
                start_to_close_timeout=policies.BULK_TIMEOUT,
                retry_policy=policies.DATABASE,
                result_type=RescreenBatch,
            )
            batches += 1
            if batch.flagged:
                cases: OpenedCases = await db_step(
                    KycStep.OPEN_LIST_CHANGE_CASES,
                    OpenCasesInput(client_ids=batch.flagged, key=request.digest),
                    OpenedCases,
                )
                opened += await start_case_reviews(cases.cases, request.sla)
            if batch.next_after is None:
                break
            after = batch.next_after
        return ScreeningRefreshResult(
            list_id=loaded.list_id, clients_screened_batches=batches, cases_opened=opened
        )
