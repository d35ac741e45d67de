"""How an MT5 error leaves an activity: retryable ones as they are, the rest as final failures."""

from __future__ import annotations

from typing import NoReturn

from temporalio.exceptions import ApplicationError

from mt5_adapter.errors import Mt5Error


def raise_for_temporal(error: Mt5Error) -> NoReturn:
    """Temporal retries any exception that is not a non-retryable ApplicationError.

    A retryable error is raised unchanged (not `from` itself: a failure whose cause is itself
    sends Temporal's failure converter round the loop until the recursion limit).
    """
    if error.retryable:
        raise error
    raise ApplicationError(str(error), type=type(error).__name__, non_retryable=True) from error
