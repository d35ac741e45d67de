"""A workflow of one idempotent MT5 balance operation, with the production retry policy.

Kept in its own module so Temporal's workflow sandbox imports nothing but this and `domain`.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts import policies
    from domain.mt5 import BalanceOperation

APPLY_BALANCE = "test_apply_balance_once"


@workflow.defn(name="TestBalanceOperation")
class BalanceOperationWorkflow:
    @workflow.run
    async def run(self, operation: BalanceOperation) -> int:
        ticket: int = await workflow.execute_activity(
            APPLY_BALANCE,
            operation,
            start_to_close_timeout=policies.MT5_WRITE.timeout,
            retry_policy=policies.MT5_WRITE.retry,
            result_type=int,
        )
        return ticket
