"""MT5 errors leave activities in a shape Temporal can record: retryable ones as they are, the
rest as final failures that still name the MT5 error."""

from __future__ import annotations

import pytest
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DefaultFailureConverter, PayloadConverter
from temporalio.exceptions import ApplicationError

from activities.mt5_errors import raise_for_temporal
from mt5_adapter.errors import Mt5Error, error_for


def leaving(error: Mt5Error) -> BaseException:
    try:
        try:
            raise error
        except Mt5Error as handled:
            raise_for_temporal(handled)
    except BaseException as raised:
        return raised
    raise AssertionError("raise_for_temporal returned")


def recorded(failure_of: BaseException) -> Failure:
    failure = Failure()
    DefaultFailureConverter().to_failure(failure_of, PayloadConverter.default, failure)
    return failure


def test_a_retryable_error_leaves_as_it_is_and_is_recorded_with_its_text() -> None:
    error = error_for(12, "Too frequent", "trade/balance")
    raised = leaving(error)
    assert raised is error and raised.__cause__ is None
    assert "Too frequent" in recorded(raised).message


@pytest.mark.parametrize("retcode", [13, 10019, 3])
def test_a_final_error_leaves_as_a_non_retryable_failure_naming_it(retcode: int) -> None:
    error = error_for(retcode, "refused", "trade/balance")
    raised = leaving(error)
    assert isinstance(raised, ApplicationError) and raised.non_retryable
    assert raised.type == type(error).__name__ and raised.__cause__ is error
    assert recorded(raised).application_failure_info.non_retryable
