"""Typed steps: mypy refuses an activity or a call that does not match its step, and the worker
refuses to start with a step implemented twice, on the wrong queue, or not at all."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from contracts import policies
from contracts.account_opening import ReserveLoginInput, reserve_mt5_login
from contracts.screening_refresh import RescreenBatch, RescreenInput, rescreen_clients
from contracts.steps import (
    Mt5Step,
    Step,
    _heartbeating,
    implementations,
    implements,
    unimplemented,
)

ROOT = Path(__file__).resolve().parents[2]

MISMATCHES = """
    from contracts.account_opening import (
        CreditDemoDepositInput,
        ReserveLoginInput,
        credit_demo_deposit,
        reserve_mt5_login,
    )
    from contracts.steps import implements


    class Records:
        @implements(reserve_mt5_login)
        async def takes_the_wrong_argument(self, request: CreditDemoDepositInput) -> int:
            return 1

        @implements(reserve_mt5_login)
        async def returns_the_wrong_result(self, request: ReserveLoginInput) -> str:
            return "1"


    async def workflow_body(deposit: CreditDemoDepositInput) -> None:
        await reserve_mt5_login(deposit)
        login: str = await reserve_mt5_login(ReserveLoginInput.model_validate({}))
        await credit_demo_deposit(deposit)
"""

MATCHES = """
    from contracts.account_opening import ReserveLoginInput, reserve_mt5_login
    from contracts.steps import implements


    class Records:
        @implements(reserve_mt5_login)
        async def reserve(self, request: ReserveLoginInput) -> int:
            return 1


    async def workflow_body(request: ReserveLoginInput) -> int:
        return await reserve_mt5_login(request)
"""


def mypy_errors(tmp_path: Path, source: str) -> list[str]:
    module = tmp_path / "steps_under_test.py"
    module.write_text(textwrap.dedent(source))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent", str(module)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return [line for line in result.stdout.splitlines() if ": error:" in line]


def test_mypy_refuses_an_activity_or_a_call_that_does_not_match_its_step(
    tmp_path: Path,
) -> None:
    errors = mypy_errors(tmp_path, MISMATCHES)
    lines = {int(error.split(":")[1]) for error in errors}
    # The wrong argument (line 12), the wrong result (16), a call with another step's argument
    # (22), a result taken as the wrong type (23), an MT5 step called without its server (24).
    assert lines == {12, 13, 16, 17, 22, 23, 24}, "\n".join(errors)
    assert mypy_errors(tmp_path, MATCHES) == []


def test_two_different_steps_cannot_share_a_name() -> None:
    with pytest.raises(ValueError, match="two different steps are called 'reserve_mt5_login'"):
        Step("reserve_mt5_login", ReserveLoginInput, str, policies.DATABASE)
    # The same declaration again (a module imported twice) is the same step.
    Step("reserve_mt5_login", ReserveLoginInput, int, policies.DATABASE)


class _Steps:
    @implements(reserve_mt5_login)
    async def reserve(self, request: ReserveLoginInput) -> int:
        return 1


class _SameStepAgain(_Steps):
    @implements(reserve_mt5_login)
    async def reserve_again(self, request: ReserveLoginInput) -> int:
        return 2


def test_the_worker_registers_each_step_once_on_its_own_queue() -> None:
    found = implementations(Step, _Steps())
    assert list(found) == ["reserve_mt5_login"]
    with pytest.raises(TypeError, match="reserve_mt5_login is not a Mt5Step"):
        implementations(Mt5Step, _Steps())
    with pytest.raises(TypeError, match="reserve_mt5_login is implemented twice"):
        implementations(Step, _SameStepAgain())


def test_a_declared_step_nobody_implements_is_named() -> None:
    assert "reserve_mt5_login" in unimplemented(Step, {})
    assert "reserve_mt5_login" not in unimplemented(Step, implementations(Step, _Steps()))
    assert "reserve_mt5_login" not in unimplemented(Mt5Step, {})


class _ListSteps:
    def __init__(self) -> None:
        self.done = asyncio.Event()

    @implements(rescreen_clients)  # a BULK step: it has a heartbeat timeout
    async def rescreen(self, request: RescreenInput) -> RescreenBatch:
        await self.done.wait()  # long work (e.g. in a thread) that does not heartbeat itself
        return RescreenBatch(next_after=request.after)


def _environment_ending(work: asyncio.Event, after_beats: int, beats: list[object]) -> Any:
    """An activity environment whose `after_beats`-th heartbeat lets the work end."""

    def heard(*details: object) -> None:
        beats.append(details)
        if len(beats) >= after_beats:
            work.set()

    environment = ActivityEnvironment()
    environment.on_heartbeat = heard
    return environment


async def test_a_step_with_a_heartbeat_timeout_heartbeats_while_it_works() -> None:
    assert policies.BULK.heartbeat == timedelta(seconds=30)
    steps, beats = _ListSteps(), list[object]()
    environment = _environment_ending(steps.done, 1, beats)
    after = uuid.uuid4()
    run = environment.run(steps.rescreen, RescreenInput(list_id=1, after=after))
    batch = await asyncio.wait_for(run, timeout=30)
    assert batch.next_after == after and beats

    # And on and on while the work lasts, every `heartbeat / HEARTBEATS_PER_TIMEOUT`.
    work, beats = asyncio.Event(), []

    async def long_work() -> str:
        await work.wait()
        return "done"

    beating = _heartbeating(long_work, timedelta(milliseconds=10))
    environment = _environment_ending(work, 3, beats)
    assert await asyncio.wait_for(environment.run(beating), timeout=30) == "done"
    assert len(beats) >= 3


def test_a_step_without_a_heartbeat_is_not_wrapped() -> None:
    assert policies.DATABASE.heartbeat is None
    assert not hasattr(_Steps.reserve, "__wrapped__")
    assert hasattr(_ListSteps.rescreen, "__wrapped__")
