"""A worker SIGKILLed in the middle of account opening: after a restart, exactly one MT5 user.

The simulator delays `user/add` so the kill lands while the call is in flight, and for good measure
drops the answer of one `user/add` after applying it (commit-then-drop).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.conftest import CHAOS_NAMESPACE
from tests.e2e.helpers import sign_up_and_log_in, simulator_deals, simulator_users, wait_for_account
from tests.support import database
from tests.support.processes import Simulator, start_simulator
from tests.support.stack import Stack

pytestmark = pytest.mark.chaos
SIGNUPS = 3


@pytest.fixture
def chaos_stack(
    pg_cluster_url: str, temporal_env: WorkflowEnvironment, artifacts_dir: Path
) -> Iterator[tuple[Stack, Simulator]]:
    db = database.create_database(pg_cluster_url, prefix="chaos")
    simulator = start_simulator(artifacts_dir / "logs")
    stack = Stack(
        owner_url=db.owner_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
        simulator=simulator,
        log_dir=artifacts_dir / "logs",
        extra_env={"BROKERFLOW_TEMPORAL_NAMESPACE": CHAOS_NAMESPACE},
    )
    try:
        stack.start()
        yield stack, simulator
    finally:
        stack.stop()
        simulator.child.stop()
        database.drop_database(pg_cluster_url, db)


def wait_until_user_add_arrives(simulator: Simulator, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while simulator.fault_hits() == 0:
        if time.monotonic() > deadline:
            raise TimeoutError("user/add never reached the simulator")
        time.sleep(0.05)


def test_killed_worker_resumes_with_exactly_one_mt5_user(
    chaos_stack: tuple[Stack, Simulator],
) -> None:
    stack, simulator = chaos_stack
    simulator.inject_faults(
        {"path": "/api/user/add", "mode": "latency", "latency_ms": 1500, "times": SIGNUPS},
        {"path": "/api/user/add", "mode": "drop_after_commit", "times": 1},
    )
    with httpx.Client(base_url=stack.api_url, timeout=30) as api:
        clients = [sign_up_and_log_in(api) for _ in range(SIGNUPS)]
        wait_until_user_add_arrives(simulator)
        assert stack.worker is not None
        stack.worker.kill()
        stack.start_worker()
        accounts = [wait_for_account(api, headers, timeout=120) for _, headers in clients]

    logins = [a["login"] for a in accounts]
    assert len(set(logins)) == SIGNUPS
    users = simulator_users(simulator.base_url)
    for accepted, _ in clients:
        marker = f"bf:{accepted['application_id'].replace('-', '')[:28]}"
        assert len([u for u in users if u.get("Comment") == marker]) == 1
    for login in logins:
        deposits = [d for d in simulator_deals(simulator.base_url, login) if int(d["Action"]) == 2]
        assert len(deposits) == 1, f"login {login} has {len(deposits)} demo deposits"
