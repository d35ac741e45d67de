"""MT5 steps of the money sagas, for one MT5 server, registered on that server's task queue."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from temporalio import activity

from activities.mt5_balance import SERVER_CLOCK_SLACK, apply_balance_once
from activities.mt5_errors import raise_for_temporal
from domain.money_flows import BalanceChange, Mt5AccountRef, ReverseBalanceChange, Step
from domain.mt5 import BalanceOperation, BalanceType
from mt5_adapter.errors import Mt5Error
from mt5_adapter.gateway import Mt5Gateway


class Mt5FundsSteps:
    def __init__(self, gateway: Mt5Gateway) -> None:
        self._mt5 = gateway

    @activity.defn(name=Step.MT5_FREE_MARGIN)
    async def mt5_free_margin(self, account: Mt5AccountRef) -> Decimal:
        try:
            return (await self._mt5.get_account_state(account.login)).margin_free
        except Mt5Error as error:
            raise_for_temporal(error)

    @activity.defn(name=Step.MT5_CREDIT_BALANCE)
    async def mt5_credit_balance(self, change: BalanceChange) -> int:
        return await self._apply(change, check_margin=False)

    @activity.defn(name=Step.MT5_DEBIT_BALANCE)
    async def mt5_debit_balance(self, change: BalanceChange) -> int:
        """MT5 itself refuses a debit beyond free margin (10019 No money): final, not retried."""
        return await self._apply(change, check_margin=True)

    @activity.defn(name=Step.MT5_REVERSE_IF_APPLIED)
    async def mt5_reverse_if_applied(self, request: ReverseBalanceChange) -> int | None:
        """Compensation: a debit credited back, a credit taken back (whatever the margin: it
        was never the client's), if MT5 holds the original deal at all."""
        change = request.change
        try:
            applied = await self._mt5.find_deal_by_comment(
                change.account.login,
                change.comment,
                since=change.requested_at - SERVER_CLOCK_SLACK,
                until=datetime.now(UTC) + SERVER_CLOCK_SLACK,
            )
        except Mt5Error as error:
            raise_for_temporal(error)
        if applied is None:
            return None
        back = change.model_copy(update={"amount": -change.amount, "comment": request.comment})
        return await self._apply(back, check_margin=False)

    async def _apply(self, change: BalanceChange, *, check_margin: bool) -> int:
        operation = BalanceOperation(
            login=change.account.login,
            type=BalanceType.BALANCE,
            amount=change.amount,
            comment=change.comment,
            check_margin=check_margin,
        )
        return await apply_balance_once(self._mt5, operation, since=change.requested_at)
