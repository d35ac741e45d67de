"""The account-opening workflow's logic, with its activities replaced by fakes of the same name."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from contracts import account_opening as opening
from contracts import mt5_task_queue
from contracts.account_opening import (
    AccountOpeningInput,
    CreateMt5UserInput,
    CreateMt5UserOutcome,
    CreditDemoDepositInput,
    DeleteMt5UserInput,
    MarkApplicationFailedInput,
    RecordMt5AccountInput,
    ReserveLoginInput,
)
from contracts.steps import implements
from domain.onboarding import AccountType
from tests.conftest import BIN
from workflows.account_opening import DEMO_DEPOSIT, AccountOpeningWorkflow


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    yield environment
    await environment.shutdown()


@dataclass
class FakeSteps:
    """Records calls; `taken` logins answer LOGIN_TAKEN; `fail_recording` breaks the last step."""

    taken: set[int] = field(default_factory=set)
    fail_recording: bool = False
    calls: list[tuple[str, object]] = field(default_factory=list)
    next_login: int = 5_000_000

    def activities(self) -> tuple[list[Callable[..., Any]], list[Callable[..., Any]]]:
        @implements(opening.reserve_mt5_login)
        async def reserve(request: ReserveLoginInput) -> int:
            self.calls.append((opening.reserve_mt5_login.name, request.replacing))
            if request.replacing is not None or not any(
                c[0] == opening.reserve_mt5_login.name for c in self.calls[:-1]
            ):
                self.next_login += 1
            return self.next_login

        @implements(opening.create_mt5_user)
        async def create(request: CreateMt5UserInput) -> CreateMt5UserOutcome:
            self.calls.append((opening.create_mt5_user.name, request.login))
            if request.login in self.taken:
                return CreateMt5UserOutcome.LOGIN_TAKEN
            return CreateMt5UserOutcome.CREATED

        @implements(opening.credit_demo_deposit)
        async def credit(request: CreditDemoDepositInput) -> int:
            self.calls.append((opening.credit_demo_deposit.name, (request.login, request.amount)))
            return 77

        @implements(opening.record_mt5_account)
        async def record(request: RecordMt5AccountInput) -> None:
            self.calls.append((opening.record_mt5_account.name, request.login))
            if self.fail_recording:
                raise ApplicationError("mapping refused", type="Broken", non_retryable=True)

        @implements(opening.delete_mt5_user_if_ours)
        async def delete(request: DeleteMt5UserInput) -> None:
            self.calls.append((opening.delete_mt5_user_if_ours.name, request.application_id))

        @implements(opening.mark_application_failed)
        async def mark_failed(request: MarkApplicationFailedInput) -> None:
            self.calls.append((opening.mark_application_failed.name, request.reason))

        return [reserve, record, mark_failed], [create, credit, delete]

    def steps(self) -> list[str]:
        return [name for name, _ in self.calls]


async def run_opening(
    env: WorkflowEnvironment, fakes: FakeSteps, account_type: AccountType
) -> object:
    queue = f"test-{uuid.uuid4()}"
    main_activities, mt5_activities = fakes.activities()
    request = AccountOpeningInput(
        application_id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        account_type=account_type,
        mt5_server="demo",
    )
    async with (
        Worker(
            env.client,
            task_queue=queue,
            workflows=[AccountOpeningWorkflow],
            activities=main_activities,
        ),
        Worker(env.client, task_queue=mt5_task_queue("demo"), activities=mt5_activities),
    ):
        handle = await env.client.start_workflow(
            AccountOpeningWorkflow.run,
            request,
            id=f"account-opening-{request.application_id}",
            task_queue=queue,
        )
        try:
            return await handle.result()
        finally:
            history = await handle.fetch_history()
            await Replayer(
                workflows=[AccountOpeningWorkflow], data_converter=pydantic_data_converter
            ).replay_workflow(history)


class TestAccountOpening:
    async def test_opens_user_funds_it_and_records_the_mapping(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = FakeSteps()
        result = await run_opening(env, fakes, AccountType.PRO)
        assert result.login == 5_000_001  # type: ignore[attr-defined]
        assert fakes.steps() == [
            opening.reserve_mt5_login.name,
            opening.create_mt5_user.name,
            opening.credit_demo_deposit.name,
            opening.record_mt5_account.name,
        ]
        assert (opening.credit_demo_deposit.name, (5_000_001, DEMO_DEPOSIT)) in fakes.calls

    async def test_a_login_taken_outside_brokerflow_is_skipped(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = FakeSteps(taken={5_000_001, 5_000_002})
        result = await run_opening(env, fakes, AccountType.STANDARD)
        assert result.login == 5_000_003  # type: ignore[attr-defined]
        assert [c for c in fakes.calls if c[0] == opening.reserve_mt5_login.name] == [
            (opening.reserve_mt5_login.name, None),
            (opening.reserve_mt5_login.name, 5_000_001),
            (opening.reserve_mt5_login.name, 5_000_002),
        ]

    async def test_a_failure_after_the_mt5_user_exists_undoes_it(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = FakeSteps(fail_recording=True)
        with pytest.raises(WorkflowFailureError):
            await run_opening(env, fakes, AccountType.STANDARD)
        assert fakes.steps()[-2:] == [
            opening.delete_mt5_user_if_ours.name,
            opening.mark_application_failed.name,
        ]
