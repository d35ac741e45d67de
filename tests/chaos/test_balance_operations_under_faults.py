"""Balance operations through Temporal while the MT5 simulator drops, refuses and forgets.

About 10% of `trade/balance` requests fail, a third of those after the deposit was applied
(commit-then-drop), and look-ups fail too. Afterwards every balance is exactly what was intended
and no operation has two deals. `BROKERFLOW_CHAOS_BALANCE_OPS` sets the size (default 600).
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.mt5_balance import apply_balance_once
from domain.mt5 import BalanceOperation, NewMt5User
from mt5_adapter.webapi import WebApiGateway, gateway_for
from tests.chaos.balance_workflow import APPLY_BALANCE, BalanceOperationWorkflow
from tests.conftest import mt5_settings_for
from tests.e2e.helpers import simulator_deals, simulator_users
from tests.support.processes import Simulator, start_simulator

pytestmark = pytest.mark.chaos
OPERATIONS = int(os.environ.get("BROKERFLOW_CHAOS_BALANCE_OPS", "600"))
ACCOUNTS = 20
FAULTS = [
    {"path": "/api/trade/balance", "mode": "drop_after_commit", "probability": 0.035},
    {"path": "/api/trade/balance", "mode": "drop_before_commit", "probability": 0.02},
    {"path": "/api/trade/balance", "mode": "retcode", "retcode": 12, "probability": 0.025},
    {"path": "/api/trade/balance", "mode": "http_403", "probability": 0.02},
    {"path": "/api/deal/get_batch", "mode": "retcode", "retcode": 10, "probability": 0.05},
]


@pytest.fixture
async def faulty_mt5(artifacts_dir: Path) -> AsyncIterator[tuple[Simulator, WebApiGateway]]:
    simulator = start_simulator(artifacts_dir / "logs", tls=False)
    gateway = gateway_for(mt5_settings_for(simulator))
    yield simulator, gateway
    await gateway.aclose()
    simulator.child.stop()


async def test_every_balance_is_exact_and_no_deal_is_doubled(
    temporal_env: WorkflowEnvironment, faulty_mt5: tuple[Simulator, WebApiGateway]
) -> None:
    simulator, gateway = faulty_mt5
    logins = [8_000_000 + n for n in range(ACCOUNTS)]
    for login in logins:
        await gateway.add_user(
            NewMt5User(
                login=login,
                group="demo\\standard",
                name="Chaos",
                leverage=100,
                password_main="Main#Pass1",
                password_investor="Inv#Pass1",
            )
        )
    chooser = random.Random(20261124)
    operations = [
        BalanceOperation(
            login=chooser.choice(logins),
            amount=Decimal(chooser.randrange(1, 100_000)) / 100,
            comment=f"chaos:{uuid.uuid4().hex[:24]}",
        )
        for _ in range(OPERATIONS)
    ]
    requested_at = datetime.now(UTC)

    @activity.defn(name=APPLY_BALANCE)
    async def apply(operation: BalanceOperation) -> int:
        return await apply_balance_once(gateway, operation, since=requested_at)

    simulator.inject_faults(*FAULTS, seed=11)
    queue = f"chaos-balance-{uuid.uuid4()}"
    async with Worker(
        temporal_env.client,
        task_queue=queue,
        workflows=[BalanceOperationWorkflow],
        activities=[apply],
        max_concurrent_activities=50,
    ):
        handles = await asyncio.gather(
            *(
                temporal_env.client.start_workflow(
                    BalanceOperationWorkflow.run, op, id=f"chaos-{op.comment}", task_queue=queue
                )
                for op in operations
            )
        )
        tickets = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 600)
    hits = simulator.fault_hits()
    simulator.clear_faults()

    assert hits >= OPERATIONS // 20, f"only {hits} faults fired: the test proved little"
    assert len(set(tickets)) == OPERATIONS
    intended = Counter[int]()
    for op in operations:
        intended[op.login] += int(op.amount * 100)
    users = {int(u["Login"]): u for u in simulator_users(simulator.base_url)}
    for login in logins:
        deals = simulator_deals(simulator.base_url, login)
        comments = Counter(d["Comment"] for d in deals)
        assert max(comments.values()) == 1, f"duplicate deal on {login}"
        assert int(Decimal(users[login]["Balance"]) * 100) == intended[login], login
