"""Finance's resolution of one queued unmatched payment (docs/unmatched-funds.md): credited to
a client's wallet or returned to the payer. A refusal for good (the processor will not return
it, the books refuse the entry) puts the item back to open with the error, for finance to
decide again."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from contracts import unmatched_funds as unmatched
    from contracts.unmatched_funds import (
        RESOLVE_UNMATCHED,
        ReopenUnmatched,
        ResolveUnmatched,
        UnmatchedOutcome,
    )
    from domain.payments import UnmatchedStatus

# Checked by the workflow sandbox like this module (not passed through): workflow code.
from workflows.funds import failure_text, unstoppable


@workflow.defn(name=RESOLVE_UNMATCHED.name)
class ResolveUnmatchedFundsWorkflow:
    """Finance's resolution of one queued unmatched payment: credited to a client's wallet or
    returned to the payer. A refusal for good (the processor will not return it, the books
    refuse the entry) puts the item back to open with the error, for finance to decide again."""

    @workflow.run
    async def run(self, request: ResolveUnmatched) -> UnmatchedOutcome:
        try:
            return await unstoppable(unmatched.resolve_unmatched_funds(request))
        except ActivityError as failure:
            error = failure_text(failure)
            await unstoppable(
                unmatched.reopen_unmatched_funds(
                    ReopenUnmatched(item_id=request.item_id, error=error)
                )
            )
            return UnmatchedOutcome(
                item_id=request.item_id, status=UnmatchedStatus.OPEN, error=error
            )
