"""Temporal workflows. Task queues: workflows and database work run on `TASK_QUEUE`; every MT5
call runs on its server's own queue, so a slow server never stalls another."""

from __future__ import annotations

TASK_QUEUE = "brokerflow"


def mt5_task_queue(server: str) -> str:
    return f"mt5-{server}"
