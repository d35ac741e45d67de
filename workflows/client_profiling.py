"""Client profiling of one MT5 server (run by its `client-profiling-<server>` Temporal Schedule)
and the move of one account to the MT5 group of the book a dealer chose (`BookMove`).

BookMove:
1. the MT5 user is read (the move's `before`);
2. `user/update` sets the book's group (an absolute value: a retry after a lost answer sets the
   same group again), with the account change's own MT5 step;
3. the user is read back: a group other than the target fails the move (`Mt5GroupNotApplied`);
4. the decision, the account row, `account_books` and the audit entry are written together.

A refusal by MT5 marks the decision failed with its reason and fails the workflow with that
error's type (e.g. `Mt5PermissionDenied` for an unknown group).
"""

from __future__ import annotations

from typing import NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import account_change as change_steps
    from contracts import client_profiling as profiling_steps
    from contracts.account_change import ApplyChangeInput, ReadMt5AccountInput
    from contracts.client_profiling import (
        BOOK_MOVE,
        CLIENT_PROFILING,
        BookMoveInput,
        BookMoveResult,
        ClientProfilingInput,
        MarkBookMoveFailedInput,
        ProfileServerInput,
        ProfilesStored,
        RecordBookMovedInput,
    )

__all__ = ["BookMoveWorkflow", "ClientProfilingWorkflow"]


@workflow.defn(name=CLIENT_PROFILING.name)
class ClientProfilingWorkflow:
    @workflow.run
    async def run(self, request: ClientProfilingInput) -> ProfilesStored:
        stored = await profiling_steps.profile_server_accounts(
            request.server,
            ProfileServerInput(
                server=request.server,
                window=request.window,
                max_ticks_per_symbol=request.max_ticks_per_symbol,
            ),
        )
        if stored.truncated_symbols:
            workflow.logger.warning(
                "quotes of %s cut at %d per symbol on %s",
                stored.truncated_symbols,
                request.max_ticks_per_symbol,
                request.server,
            )
        return stored


@workflow.defn(name=BOOK_MOVE.name)
class BookMoveWorkflow:
    @workflow.run
    async def run(self, request: BookMoveInput) -> BookMoveResult:
        self._request = request
        read = ReadMt5AccountInput(change_id=request.decision_id, login=request.login)
        try:
            before = await change_steps.read_mt5_account(request.server, read)
            await change_steps.apply_account_change(
                request.server,
                ApplyChangeInput(
                    change_id=request.decision_id, login=request.login, group=request.group
                ),
            )
            after = await change_steps.read_mt5_account(request.server, read)
        except ActivityError as failure:
            cause = failure.cause
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                await self._fail(cause.type or "Mt5Refused", cause.message)
            raise
        if after.group != request.group:
            await self._fail(
                "Mt5GroupNotApplied",
                f"account {request.login} is in {after.group!r} after the move, "
                f"not {request.group!r}",
            )
        await profiling_steps.record_book_moved(
            RecordBookMovedInput(
                decision_id=request.decision_id, before=before, after=after, at=workflow.now()
            )
        )
        return BookMoveResult(status="applied", before=before, after=after)

    async def _fail(self, error_type: str, reason: str) -> NoReturn:
        await profiling_steps.mark_book_move_failed(
            MarkBookMoveFailedInput(
                decision_id=self._request.decision_id,
                reason=reason,
                error_type=error_type,
                at=workflow.now(),
            )
        )
        raise ApplicationError(reason, type=error_type, non_retryable=True)
