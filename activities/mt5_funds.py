"""MT5 steps of the money sagas, for one MT5 server, registered on that server's task queue."""

from __future__ import annotations

from decimal import Decimal

from temporalio import activity

from activities.mt5_balance import apply_balance_once, find_balance_deal, write_balance
from activities.mt5_errors import raise_for_temporal
from contracts import funds
from contracts.funds import BalanceChange, ReverseBalanceChange
from contracts.steps import implements
from domain.money_flows import Mt5AccountRef
from domain.mt5 import BalanceOperation, BalanceType
from mt5_adapter.errors import Mt5Error
from mt5_adapter.gateway import Mt5Gateway


class Mt5FundsSteps:
    def __init__(self, gateway: Mt5Gateway) -> None:
        self._mt5 = gateway

    @implements(funds.mt5_free_margin)
    async def mt5_free_margin(self, account: Mt5AccountRef) -> Decimal:
        try:
            return (await self._mt5.get_account_state(account.login)).margin_free
        except Mt5Error as error:
            raise_for_temporal(error)

    @implements(funds.mt5_credit_balance)
    async def mt5_credit_balance(self, change: BalanceChange) -> int:
        return await self._apply(change, check_margin=False)

    @implements(funds.mt5_debit_balance)
    async def mt5_debit_balance(self, change: BalanceChange) -> int:
        """MT5 itself refuses a debit beyond free margin (10019 No money): final, not retried."""
        return await self._apply(change, check_margin=True)

    @implements(funds.mt5_reverse_if_applied)
    async def mt5_reverse_if_applied(self, request: ReverseBalanceChange) -> None:
        """Compensation: a debit credited back, a credit taken back (whatever the margin: it
        was never the client's), if MT5 holds the original deal at all. Both deals are found on
        MT5 by their comments, on every attempt: the original may have landed in any attempt of
        its own step, and this reversal may be asked for more than once; its ticket is logged.

        A failed look-up is retried, never final (`find_balance_deal`): "not there" is only
        believed from a look-up MT5 answered."""
        change = request.change
        login = change.account.login
        applied = await find_balance_deal(self._mt5, login, change.comment, change.requested_at)
        if applied is None:
            return
        back = change.model_copy(update={"amount": -change.amount, "comment": request.comment})
        reversal = await find_balance_deal(self._mt5, login, back.comment, back.requested_at)
        ticket = (
            reversal.ticket
            if reversal is not None
            else await write_balance(
                self._mt5, self._operation(back, check_margin=False), back.requested_at
            )
        )
        activity.logger.info(
            "MT5 deal %s reversed by deal %s (%s)", applied.ticket, ticket, back.comment
        )

    async def _apply(self, change: BalanceChange, *, check_margin: bool) -> int:
        operation = self._operation(change, check_margin=check_margin)
        return await apply_balance_once(self._mt5, operation, since=change.requested_at)

    @staticmethod
    def _operation(change: BalanceChange, *, check_margin: bool) -> BalanceOperation:
        return BalanceOperation(
            login=change.account.login,
            type=BalanceType.BALANCE,
            amount=change.amount,
            comment=change.comment,
            check_margin=check_margin,
        )
