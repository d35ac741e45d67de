"""Balance operations on MT5 exactly once, although MT5 itself has no idempotency key.

The deal comment is the key. The first attempt writes; every later attempt of the same activity
first looks for a deal with that comment (the earlier attempt may have been applied with its
answer lost) and writes only when there is none.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio import activity

from activities.mt5_errors import raise_for_temporal
from domain.mt5 import BalanceOperation
from mt5_adapter.errors import Mt5Error
from mt5_adapter.gateway import Mt5Gateway

# MT5 stamps deals with trade-server time, which may run ahead of or behind UTC.
SERVER_CLOCK_SLACK = timedelta(days=1)


async def apply_balance_once(
    gateway: Mt5Gateway, operation: BalanceOperation, since: datetime
) -> int:
    """The ticket of the deal for `operation`, written now or found from an earlier attempt.

    `since` is when the operation was first requested: the look-up window starts there.
    """
    try:
        if activity.info().attempt > 1:
            earlier = await gateway.find_deal_by_comment(
                operation.login,
                operation.comment,
                since=since - SERVER_CLOCK_SLACK,
                until=datetime.now(UTC) + SERVER_CLOCK_SLACK,
            )
            if earlier is not None:
                return earlier.ticket
        return await gateway.apply_balance(operation)
    except Mt5Error as error:
        raise_for_temporal(error)
