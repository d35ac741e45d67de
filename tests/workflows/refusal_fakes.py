"""Fakes that can say "refused after it was applied": MT5 lands the balance deal, then the step
fails for good all the same (an answer lost, then a look-up MT5 refused, as an adapter without
the outcome-unknown rule would report it). The money sagas must not take that for a refusal
that left nothing behind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts import funds
from contracts.funds import BalanceChange
from contracts.steps import implements
from tests.workflows.money_fakes import MoneyFakes


@dataclass
class RefusedAfterApplied(MoneyFakes):
    """`MoneyFakes` whose MT5 steps named in `applied_then_refused` land their deal (in
    `deals`, as MT5 would hold it) and then fail with a non-retryable error of that type."""

    applied_then_refused: dict[str, str] = field(default_factory=dict)

    def activities(self) -> tuple[list[Callable[..., Any]], list[Callable[..., Any]]]:
        main, mt5 = super().activities()

        @implements(funds.mt5_credit_balance)
        async def mt5_credit_balance(change: BalanceChange) -> int:
            await self._call(funds.mt5_credit_balance.name, change.comment, change)
            self.deals.add(change.comment)
            kind = self.applied_then_refused.get(funds.mt5_credit_balance.name)
            if kind is not None:
                raise ApplicationError(f"{kind} (fake)", type=kind, non_retryable=True)
            return self.ticket

        replaced = {activity_name(mt5_credit_balance): mt5_credit_balance}
        return main, [replaced.get(activity_name(step), step) for step in mt5]


def activity_name(step: Callable[..., Any]) -> str | None:
    definition = activity._Definition.from_callable(step)
    return definition.name if definition is not None else None
