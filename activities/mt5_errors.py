"""How an MT5 error leaves an activity: retryable ones as they are, the rest as final failures."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from mt5_adapter.errors import Mt5Error


def as_activity_failure(error: Mt5Error) -> BaseException:
    """Temporal retries any exception that is not a non-retryable ApplicationError."""
    if error.retryable:
        return error
    return ApplicationError(str(error), type=type(error).__name__, non_retryable=True)
