"""The account-opening workflow's logic, with its activities replaced by fakes of the same name."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from domain.account_opening import (
    AccountOpeningInput,
    CreateMt5UserInput,
    CreateMt5UserOutcome,
    CreditDemoDepositInput,
    DeleteMt5UserInput,
    MarkApplicationFailedInput,
    RecordMt5AccountInput,
    ReserveLoginInput,
    Step,
)
from domain.onboarding import AccountType
from tests.conftest import BIN
from workflows import mt5_task_queue
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
        @activity.defn(name=Step.RESERVE_MT5_LOGIN)
        async def reserve(request: ReserveLoginInput) -> int:
            self.calls.append((Step.RESERVE_MT5_LOGIN, request.replacing))
            if request.replacing is not None or not any(
                c[0] == Step.RESERVE_MT5_LOGIN for c in self.calls[:-1]
            ):
                self.next_login += 1
            return self.next_login

        @activity.defn(name=Step.CREATE_MT5_USER)
        async def create(request: CreateMt5UserInput) -> CreateMt5UserOutcome:
            self.calls.append((Step.CREATE_MT5_USER, request.login))
            if request.login in self.taken:
                return CreateMt5UserOutcome.LOGIN_TAKEN
            return CreateMt5UserOutcome.CREATED

        @activity.defn(name=Step.CREDIT_DEMO_DEPOSIT)
        async def credit(request: CreditDemoDepositInput) -> int:
            self.calls.append((Step.CREDIT_DEMO_DEPOSIT, (request.login, request.amount)))
            return 77

        @activity.defn(name=Step.RECORD_MT5_ACCOUNT)
        async def record(request: RecordMt5AccountInput) -> None:
            self.calls.append((Step.RECORD_MT5_ACCOUNT, request.login))
            if self.fail_recording:
                raise ApplicationError("mapping refused", type="Broken", non_retryable=True)

        @activity.defn(name=Step.DELETE_MT5_USER_IF_OURS)
        async def delete(request: DeleteMt5UserInput) -> None:
            self.calls.append((Step.DELETE_MT5_USER_IF_OURS, request.application_id))

        @activity.defn(name=Step.MARK_APPLICATION_FAILED)
        async def mark_failed(request: MarkApplicationFailedInput) -> None:
            self.calls.append((Step.MARK_APPLICATION_FAILED, request.reason))

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
            Step.RESERVE_MT5_LOGIN,
            Step.CREATE_MT5_USER,
            Step.CREDIT_DEMO_DEPOSIT,
            Step.RECORD_MT5_ACCOUNT,
        ]
        assert (Step.CREDIT_DEMO_DEPOSIT, (5_000_001, DEMO_DEPOSIT)) in fakes.calls

    async def test_a_login_taken_outside_brokerflow_is_skipped(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = FakeSteps(taken={5_000_001, 5_000_002})
        result = await run_opening(env, fakes, AccountType.STANDARD)
        assert result.login == 5_000_003  # type: ignore[attr-defined]
        assert [c for c in fakes.calls if c[0] == Step.RESERVE_MT5_LOGIN] == [
            (Step.RESERVE_MT5_LOGIN, None),
            (Step.RESERVE_MT5_LOGIN, 5_000_001),
            (Step.RESERVE_MT5_LOGIN, 5_000_002),
        ]

    async def test_a_failure_after_the_mt5_user_exists_undoes_it(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = FakeSteps(fail_recording=True)
        with pytest.raises(WorkflowFailureError):
            await run_opening(env, fakes, AccountType.STANDARD)
        assert fakes.steps()[-2:] == [Step.DELETE_MT5_USER_IF_OURS, Step.MARK_APPLICATION_FAILED]
