"""Opening an MT5 account: a demo account for a client who has just signed up (demo terms and
a demo deposit), or a live account once KYC approves (the terms KYC computed, the default live
rights, no money)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.account_opening import (
        AccountOpeningInput,
        AccountOpeningResult,
        AccountTerms,
        CreateMt5UserInput,
        CreateMt5UserOutcome,
        CreditDemoDepositInput,
        DeleteMt5UserInput,
        MarkApplicationFailedInput,
        RecordMt5AccountInput,
        ReserveLoginInput,
        Step,
    )
    from domain.mt5 import DEFAULT_LIVE_RIGHTS
    from domain.onboarding import demo_terms
    from workflows import mt5_task_queue, policies

DEMO_DEPOSIT = Decimal("10000")
# A login range crowded by accounts made outside BrokerFlow is an operations problem, not a loop.
MAX_LOGINS_TRIED = 50


@workflow.defn(name="AccountOpening")
class AccountOpeningWorkflow:
    @workflow.run
    async def run(self, request: AccountOpeningInput) -> AccountOpeningResult:
        undo: list[Callable[[], Awaitable[Any]]] = []
        try:
            return await self._open_account(request, undo)
        except BaseException as failure:
            # CancelledError is a BaseException: a cancelled opening is undone as well.
            await asyncio.shield(self._compensate(request, undo, failure))
            raise

    async def _open_account(
        self, request: AccountOpeningInput, undo: list[Callable[[], Awaitable[Any]]]
    ) -> AccountOpeningResult:
        live = request.kind == "live"
        terms = opening_terms(request)
        rights = int(DEFAULT_LIVE_RIGHTS) if live else None
        mt5_queue = mt5_task_queue(request.mt5_server)

        login = await self._db(
            Step.RESERVE_MT5_LOGIN, ReserveLoginInput(application_id=request.application_id), int
        )

        undo.append(lambda: self._undo_mt5_user(request, mt5_queue))
        for _ in range(MAX_LOGINS_TRIED):
            outcome = await workflow.execute_activity(
                Step.CREATE_MT5_USER,
                CreateMt5UserInput(
                    application_id=request.application_id,
                    login=login,
                    group=terms.group,
                    leverage=terms.leverage,
                    rights=rights,
                ),
                task_queue=mt5_queue,
                start_to_close_timeout=policies.MT5_TIMEOUT,
                retry_policy=policies.MT5_WRITE,
                result_type=CreateMt5UserOutcome,
            )
            if outcome is CreateMt5UserOutcome.CREATED:
                break
            login = await self._db(
                Step.RESERVE_MT5_LOGIN,
                ReserveLoginInput(application_id=request.application_id, replacing=login),
                int,
            )
        else:
            raise ApplicationError(
                f"{MAX_LOGINS_TRIED} MT5 logins in a row were taken on {request.mt5_server}",
                type="Mt5LoginRangeExhausted",
                non_retryable=True,
            )

        if not live:
            await workflow.execute_activity(
                Step.CREDIT_DEMO_DEPOSIT,
                CreditDemoDepositInput(
                    application_id=request.application_id,
                    login=login,
                    amount=DEMO_DEPOSIT,
                    currency=terms.currency,
                ),
                task_queue=mt5_queue,
                start_to_close_timeout=policies.MT5_TIMEOUT,
                retry_policy=policies.MT5_WRITE,
                result_type=int,
            )

        await self._db(
            Step.RECORD_MT5_ACCOUNT,
            RecordMt5AccountInput(
                application_id=request.application_id,
                login=login,
                group=terms.group,
                leverage=terms.leverage,
                currency=terms.currency,
                rights=rights,
            ),
        )
        return AccountOpeningResult(login=login, server=request.mt5_server)

    async def _undo_mt5_user(self, request: AccountOpeningInput, mt5_queue: str) -> None:
        await workflow.execute_activity(
            Step.DELETE_MT5_USER_IF_OURS,
            DeleteMt5UserInput(application_id=request.application_id),
            task_queue=mt5_queue,
            start_to_close_timeout=policies.MT5_TIMEOUT,
            retry_policy=policies.COMPENSATION,
        )

    async def _compensate(
        self,
        request: AccountOpeningInput,
        undo: list[Callable[[], Awaitable[Any]]],
        failure: BaseException,
    ) -> None:
        for step in reversed(undo):
            await step()
        await self._db(
            Step.MARK_APPLICATION_FAILED,
            MarkApplicationFailedInput(
                application_id=request.application_id,
                reason=str(failure) or type(failure).__name__,
            ),
        )

    async def _db(self, step: Step, argument: Any, result_type: type | None = None) -> Any:
        """A step against our own database, on the main task queue."""
        return await workflow.execute_activity(
            step,
            argument,
            start_to_close_timeout=policies.DATABASE_TIMEOUT,
            retry_policy=policies.DATABASE,
            result_type=result_type,
        )


def opening_terms(request: AccountOpeningInput) -> AccountTerms:
    """The group, leverage and currency of the account to open."""
    if request.kind == "demo":
        demo = demo_terms(request.account_type)
        return AccountTerms(group=demo.group, leverage=demo.leverage, currency=demo.currency)
    if request.terms is None:
        raise ApplicationError(
            f"live application {request.application_id} carries no account terms",
            type="LiveTermsMissing",
            non_retryable=True,
        )
    return request.terms
