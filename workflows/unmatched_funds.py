"""Finance's resolution of one queued unmatched payment (docs/unmatched-funds.md): credited to
a client's wallet or to one of its live MT5 accounts, or returned to the payer. A refusal for
good (the processor will not return it, the books refuse the entry) puts the item back to open
with the error, for finance to decide again."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from contracts import funds
    from contracts import unmatched_funds as unmatched
    from contracts.funds import BalanceChange, ReverseBalanceChange
    from contracts.unmatched_funds import (
        RESOLVE_UNMATCHED,
        FinishUnmatchedCredit,
        ReopenUnmatched,
        ResolveUnmatched,
        UnmatchedOutcome,
        UnmatchedTakeBackFailed,
    )
    from domain.money_flows import Mt5AccountRef, mt5_comment
    from domain.payments import UnmatchedAction, UnmatchedStatus, unmatched_reference

# Checked by the workflow sandbox like this module (not passed through): workflow code.
from workflows.funds import failure_text, show_movement, show_status, unstoppable

# `workflow.patched` id: since this change a credit may go straight to a client's MT5 account
# (hold, MT5 credit, then the MT5 mirror; on a refusal MT5 gives back what it holds and the
# money goes to the wallet). Before it every credit went to the wallet in one step.
CREDIT_TO_MT5 = "unmatched-funds-credit-to-mt5"
# `workflow.patched` id: since this change a resolution carries the search attributes of
# `contracts.funds` (docs/unmatched-funds.md): the client credited (none for a return), the
# item's `UF…` reference, the item's `UnmatchedStatus` and since when, set at the run's start
# (`crediting`/`returning`, as the API left the row) and upserted when the item's status moves
# (credited, returned, or open again). A run started before it carries none to its end.
SEARCH_ATTRIBUTES_SHOWN = "unmatched-funds-search-attributes"
# The MT5 deals' purposes (the comment is `<purpose> <UF…>`, the deal's idempotency key).
CREDIT = "dep"
TAKE_BACK = "rev"


@workflow.defn(name=RESOLVE_UNMATCHED.name)
class ResolveUnmatchedFundsWorkflow:
    """Finance's resolution of one queued unmatched payment: credited to a client's wallet or
    MT5 account, or returned to the payer. A refusal for good (the processor will not return
    it, the books refuse the entry) puts the item back to open with the error, for finance to
    decide again."""

    @workflow.run
    async def run(self, request: ResolveUnmatched) -> UnmatchedOutcome:
        show_movement(
            request.client_id,
            unmatched_reference(str(request.item_id)),
            UnmatchedStatus.CREDITING
            if request.action is UnmatchedAction.CREDIT
            else UnmatchedStatus.RETURNING,
            patch=SEARCH_ATTRIBUTES_SHOWN,
        )
        outcome = await self._resolve(request)
        # Credited, returned, or open again; a credit whose MT5 take-back failed stays crediting.
        show_status(outcome.status)
        return outcome

    async def _resolve(self, request: ResolveUnmatched) -> UnmatchedOutcome:
        if request.mt5 is not None and workflow.patched(CREDIT_TO_MT5):
            return await unstoppable(self._credit_to_mt5(request, request.mt5))
        try:
            return await unstoppable(unmatched.resolve_unmatched_funds(request))
        except ActivityError as failure:
            return await self._reopen(request, failure)

    @staticmethod
    async def _reopen(request: ResolveUnmatched, failure: ActivityError) -> UnmatchedOutcome:
        error = failure_text(failure)
        await unstoppable(
            unmatched.reopen_unmatched_funds(ReopenUnmatched(item_id=request.item_id, error=error))
        )
        return UnmatchedOutcome(item_id=request.item_id, status=UnmatchedStatus.OPEN, error=error)

    async def _credit_to_mt5(
        self, request: ResolveUnmatched, account: Mt5AccountRef
    ) -> UnmatchedOutcome:
        """Into the client's hold (a refusal here reopens the item: nothing is booked), then
        the MT5 credit through the deposits' balance step (looked up by its comment before any
        retried write). Once the money is held the item is never reopened: it ends credited,
        on MT5 or in the wallet, or with a finance case (a step failing for good after that
        fails the workflow, for operations: the money is in the client's hold)."""
        try:
            held = await unmatched.unmatched_funds_in_transit(request)
        except ActivityError as failure:
            return await self._reopen(request, failure)
        credited = UnmatchedOutcome(item_id=request.item_id, status=UnmatchedStatus.CREDITED)
        if held.credited:
            return credited
        credit = BalanceChange(
            account=account,
            amount=held.amount.amount,
            comment=mt5_comment(CREDIT, held.reference),
            requested_at=workflow.info().workflow_start_time,
        )
        try:
            ticket = await funds.mt5_credit_balance(account.server, credit)
        except ActivityError as refused:
            # MT5 refused for good (a disabled or missing account, a final retcode). A refusal
            # may come after MT5 applied the write: it gives back what it holds of it before
            # the money goes to the wallet, or the client would have it twice.
            refusal = failure_text(refused)
            back = mt5_comment(TAKE_BACK, held.reference)
            try:
                await funds.mt5_reverse_if_applied(
                    account.server, ReverseBalanceChange(change=credit, comment=back)
                )
            except ActivityError as failed:
                await unmatched.unmatched_take_back_failed(
                    UnmatchedTakeBackFailed(
                        request=request,
                        refusal=refusal,
                        error=failure_text(failed),
                        what=f"undo {credit.comment!r} on MT5 {account.server} "
                        f"{account.login} with {back!r}",
                    )
                )
                return UnmatchedOutcome(
                    item_id=request.item_id,
                    status=UnmatchedStatus.CREDITING,
                    error=f"MT5 refused the credit ({refusal}); taking it back failed",
                )
            await unmatched.finish_unmatched_credit(
                FinishUnmatchedCredit(request=request, refusal=refusal)
            )
            return credited.model_copy(update={"error": f"to the wallet: {refusal}"})
        await unmatched.finish_unmatched_credit(
            FinishUnmatchedCredit(request=request, ticket=ticket)
        )
        return credited
