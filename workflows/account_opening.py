"""Opening an MT5 account: a demo account for a client who has just signed up (demo terms and
a demo deposit), or a live account once KYC approves (the terms KYC computed, the default live
rights, no money)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import account_opening as opening
    from contracts.account_opening import (
        ACCOUNT_OPENING,
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
    )
    from domain.mt5 import DEFAULT_LIVE_RIGHTS
    from domain.onboarding import demo_terms

DEMO_DEPOSIT = Decimal("10000")
# A login range crowded by accounts made outside BrokerFlow is an operations problem, not a loop.
MAX_LOGINS_TRIED = 50


@workflow.defn(name=ACCOUNT_OPENING.name)
class AccountOpeningWorkflow:
    @workflow.run
    async def run(self, request: AccountOpeningInput) -> AccountOpeningResult:
        undo: list[Callable[[], Awaitable[None]]] = []
        try:
            return await self._open_account(request, undo)
        except BaseException as failure:
            # CancelledError is a BaseException: a cancelled opening is undone as well.
            await asyncio.shield(self._compensate(request, undo, failure))
            raise

    async def _open_account(
        self, request: AccountOpeningInput, undo: list[Callable[[], Awaitable[None]]]
    ) -> AccountOpeningResult:
        live = request.kind == "live"
        terms = opening_terms(request)
        rights = int(DEFAULT_LIVE_RIGHTS) if live else None
        server = request.mt5_server

        login = await opening.reserve_mt5_login(
            ReserveLoginInput(application_id=request.application_id)
        )

        undo.append(
            lambda: opening.delete_mt5_user_if_ours(
                server, DeleteMt5UserInput(application_id=request.application_id)
            )
        )
        for _ in range(MAX_LOGINS_TRIED):
            outcome = await opening.create_mt5_user(
                server,
                CreateMt5UserInput(
                    application_id=request.application_id,
                    login=login,
                    group=terms.group,
                    leverage=terms.leverage,
                    rights=rights,
                ),
            )
            if outcome is CreateMt5UserOutcome.CREATED:
                break
            login = await opening.reserve_mt5_login(
                ReserveLoginInput(application_id=request.application_id, replacing=login)
            )
        else:
            raise ApplicationError(
                f"{MAX_LOGINS_TRIED} MT5 logins in a row were taken on {request.mt5_server}",
                type="Mt5LoginRangeExhausted",
                non_retryable=True,
            )

        if not live:
            await opening.credit_demo_deposit(
                server,
                CreditDemoDepositInput(
                    application_id=request.application_id,
                    login=login,
                    amount=DEMO_DEPOSIT,
                    currency=terms.currency,
                ),
            )

        await opening.record_mt5_account(
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

    async def _compensate(
        self,
        request: AccountOpeningInput,
        undo: list[Callable[[], Awaitable[None]]],
        failure: BaseException,
    ) -> None:
        for step in reversed(undo):
            await step()
        await opening.mark_application_failed(
            MarkApplicationFailedInput(
                application_id=request.application_id,
                reason=str(failure) or type(failure).__name__,
            ),
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
