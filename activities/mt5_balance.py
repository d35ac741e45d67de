"""Balance operations on MT5 exactly once, although MT5 itself has no idempotency key.

The deal comment is the key. The first attempt writes; every later attempt of the same activity
first looks for a deal with that comment (the earlier attempt may have been applied with its
answer lost) and writes only when there is none.

Once an earlier attempt may have applied the write, only two answers end the step: "applied"
(the deal is found by its comment) and "certainly not applied" (a look-up that succeeded found
none, and then MT5 answered the new write with a refusal). Anything else is retried.

A refusal is not believed on its word either: a server (or a plugin on it) can book the deal and
still answer a final retcode ("refused after applied"). Before a refusal ends the step, the deal
is looked for by its comment; found, the write was applied after all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio import activity

from activities.mt5_errors import raise_for_temporal, raise_outcome_unknown
from domain.mt5 import BalanceOperation, Mt5Deal
from mt5_adapter.errors import Mt5Error
from mt5_adapter.gateway import Mt5Gateway

# The gateway converts the server's zone both ways; this only covers the two clocks' drift and
# the time between stamping `since` and the write reaching MT5.
SERVER_CLOCK_SLACK = timedelta(minutes=10)


async def apply_balance_once(
    gateway: Mt5Gateway, operation: BalanceOperation, since: datetime
) -> int:
    """The ticket of the deal for `operation`, written now or found from an earlier attempt.

    `since` is when the operation was first requested: the look-up window starts there.
    """
    if activity.info().attempt > 1:
        earlier = await find_balance_deal(gateway, operation.login, operation.comment, since)
        if earlier is not None:
            return earlier.ticket
    return await write_balance(gateway, operation, since)


async def find_balance_deal(
    gateway: Mt5Gateway, login: int, comment: str, since: datetime
) -> Mt5Deal | None:
    """The balance deal with `comment` on `login`, or None when MT5 certainly holds none.

    A look-up that fails, with whatever retcode, proves nothing either way: it is raised as a
    retryable `Mt5OutcomeUnknown`, never as a final failure (see `raise_outcome_unknown`).
    """
    try:
        return await gateway.find_deal_by_comment(
            login,
            comment,
            since=since - SERVER_CLOCK_SLACK,
            until=datetime.now(UTC) + SERVER_CLOCK_SLACK,
        )
    except Mt5Error as error:
        raise_outcome_unknown(error, f"balance deal {comment!r} on {login}")


async def write_balance(gateway: Mt5Gateway, operation: BalanceOperation, since: datetime) -> int:
    """`trade/balance`, once. A final retcode (10019, 4005, an unknown code) is a refusal only
    when a look-up MT5 answered then finds no deal with the operation's comment; a deal found is
    the write applied in spite of its answer. A write whose answer was lost is ambiguous and
    retryable: the next attempt looks it up first."""
    try:
        return await gateway.apply_balance(operation)
    except Mt5Error as error:
        if not (error.retryable or error.ambiguous):
            applied = await find_balance_deal(gateway, operation.login, operation.comment, since)
            if applied is not None:
                activity.logger.warning(
                    "MT5 refused balance deal %r on %s (%s) but holds it: deal %s",
                    operation.comment,
                    operation.login,
                    error,
                    applied.ticket,
                )
                return applied.ticket
        raise_for_temporal(error)
