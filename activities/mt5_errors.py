"""How an MT5 error leaves an activity: retryable ones as they are, the rest as final failures,
and a failed look-up after a write that may have landed as "outcome unknown", retried."""

from __future__ import annotations

from typing import NoReturn

from temporalio.exceptions import ApplicationError

from mt5_adapter.errors import Mt5Error

# The type of the failure raised when an earlier attempt may have applied a write and MT5 could
# not be asked whether it did. Never final: see `raise_outcome_unknown`.
OUTCOME_UNKNOWN = "Mt5OutcomeUnknown"


def raise_for_temporal(error: Mt5Error) -> NoReturn:
    """Temporal retries any exception that is not a non-retryable ApplicationError.

    A retryable error is raised unchanged (not `from` itself: a failure whose cause is itself
    sends Temporal's failure converter round the loop until the recursion limit). So is an
    ambiguous one (a write whose answer was lost): it may have been applied, so it is no refusal.
    """
    if error.retryable or error.ambiguous:
        raise error
    raise ApplicationError(str(error), type=type(error).__name__, non_retryable=True) from error


def raise_outcome_unknown(error: Mt5Error, what: str) -> NoReturn:
    """The look-up that would tell whether an earlier attempt applied `what` failed.

    Whatever MT5 answered (a "2 Common error", an unknown code, a permission), that answer is
    about the look-up, not about the write: the write may be on MT5. Ending the step here would
    let the workflow take it as a refusal and pay the money a second way, so the step is retried
    (MT5 writes have no attempt cap) and stays visible, with its attempt count, until MT5 answers.
    """
    raise ApplicationError(
        f"{what}: an earlier attempt may have applied it and MT5 could not be asked ({error})",
        type=OUTCOME_UNKNOWN,
        non_retryable=False,
    ) from error
