"""The daily re-KYC sweep (run by the `rekyc-sweep-daily` Temporal Schedule): a case for each
approved client whose identity document or proof of address stops being valid within the
notice period, waiting for the client to upload a new one."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts import rekyc_sweep as sweep
    from contracts.rekyc_sweep import (
        REKYC_SWEEP,
        ExpirySweepInput,
        ReKycSweepInput,
        ReKycSweepResult,
    )

# Checked by the workflow sandbox like this module (not passed through): workflow code.
from workflows.kyc_review import start_case_reviews

__all__ = ["ReKycSweepWorkflow"]

# Each batch opens cases for the clients it finds, so the next one finds others; this bounds
# the sweep should a client keep coming back (it would be picked up again tomorrow).
MAX_BATCHES = 100


@workflow.defn(name=REKYC_SWEEP.name)
class ReKycSweepWorkflow:
    @workflow.run
    async def run(self, request: ReKycSweepInput) -> ReKycSweepResult:
        # A scheduled run's id carries its scheduled time: a retried step opens the same cases.
        key = workflow.info().workflow_id
        opened = 0
        for _ in range(MAX_BATCHES):
            cases = await sweep.open_document_expiry_cases(ExpirySweepInput(key=key))
            opened += await start_case_reviews(cases.cases, request.sla)
            if not cases.more:
                break
        return ReKycSweepResult(cases_opened=opened)
