"""Every history recorded from an earlier version of the code replays on today's workflows.

A workflow that runs for days (a withdrawal waiting for its payout, a held deposit, a KYC case)
meets the code deployed after it started. Each change to a workflow's commands is guarded by
`workflow.patched` (docs/architecture.md, "Changing a workflow that runs"), and a history
recorded before the change is kept in `histories/`: a change that would break a running
workflow fails here, in CI, instead of in production.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.registry import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_are_recorded_histories() -> None:
    assert HISTORIES, "tests/workflows/histories/ holds no recorded history"


@pytest.mark.parametrize("recorded", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_a_recorded_history_replays_on_todays_code(recorded: Path) -> None:
    history = WorkflowHistory.from_json(recorded.stem, recorded.read_text())
    result = await Replayer(
        workflows=WORKFLOWS, data_converter=pydantic_data_converter
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{recorded.name}: {result.replay_failure}"
