"""The contracts between BrokerFlow's parts and its Temporal workflows, one module per business
process (its stem): the workflow's name and id, its signal and update names, its payloads and one
typed stub per step (`contracts.steps`), carrying the step's retry policy and task queue.

Workflows call the stubs, activities implement them, the worker registers them and the API
starts, signals and updates a workflow through them: none of the four imports another.

Task queues: workflows and database work run on `TASK_QUEUE`; every MT5 call runs on its
server's own queue, so a slow server never stalls another.
"""

from __future__ import annotations

TASK_QUEUE = "brokerflow"


def mt5_task_queue(server: str) -> str:
    return f"mt5-{server}"
