"""The API's Temporal client, connected on first use: the API starts even while Temporal is down."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from contracts import TASK_QUEUE
from contracts.process import Process, Signal, Update
from domain.errors import Conflict, ServiceUnavailable

A = TypeVar("A")
ResultT = TypeVar("ResultT")
# A decision waits for the workflow to record it; longer than this and the caller hears 503.
UPDATE_TIMEOUT_SECONDS = 30.0


async def connect_temporal(address: str, namespace: str) -> Client:
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=pydantic_data_converter,
        interceptors=[TracingInterceptor()],
    )


class TemporalConnector:
    def __init__(self, address: str, namespace: str, client: Client | None = None) -> None:
        self._address = address
        self._namespace = namespace
        self._client = client
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    try:
                        self._client = await asyncio.wait_for(
                            connect_temporal(self._address, self._namespace), timeout=10
                        )
                    except (RuntimeError, TimeoutError) as exc:
                        raise ServiceUnavailable(
                            "the workflow engine is not reachable; try again shortly"
                        ) from exc
        return self._client


async def start_once(
    temporal: TemporalConnector, process: Process[A, Any], arg: A, workflow_id: str
) -> None:
    """Start a workflow under its business-key id on the main task queue; a second start of the
    same id is a no-op. Called before the request's commit: a refused start rolls it back (503)."""
    client = await temporal.client()
    try:
        await client.start_workflow(
            process.name,
            arg,
            id=workflow_id,
            task_queue=TASK_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        return
    except RPCError as exc:
        raise ServiceUnavailable(
            "the workflow engine did not accept the request; try again"
        ) from exc


async def signal_if_open(
    temporal: TemporalConnector, workflow_id: str, signal: Signal[A], arg: A
) -> bool:
    """Signal a workflow; False when it has already finished (or never existed)."""
    client = await temporal.client()
    try:
        await client.get_workflow_handle(workflow_id).signal(signal.name, arg)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise ServiceUnavailable("the workflow engine is not reachable; try again shortly") from exc
    return True


async def execute_update(
    temporal: TemporalConnector,
    workflow_id: str,
    update: Update[A, ResultT],
    arg: A,
    *,
    closed: str,
    update_id: str | None = None,
    timeout_seconds: float = UPDATE_TIMEOUT_SECONDS,
) -> ResultT:
    """Run a workflow update and wait for its result. A refusal by the update's validator or
    handler is a 409 with the workflow's reason; a finished or unknown workflow is a 409 saying
    `closed`; an unreachable or silent engine is a 503.

    `update_id` (see `staff_update_id`) makes a retried request the same update: Temporal
    answers it with the first one's outcome instead of running it again."""
    client = await temporal.client()
    handle = client.get_workflow_handle(workflow_id)
    try:
        result: ResultT = await asyncio.wait_for(
            handle.execute_update(update.name, arg, id=update_id, result_type=update.result),
            timeout_seconds,
        )
    except WorkflowUpdateFailedError as exc:
        raise Conflict(_failure_message(exc.cause)) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise Conflict(closed) from exc
        raise ServiceUnavailable("the workflow engine is not reachable; try again shortly") from exc
    except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError) as exc:
        raise ServiceUnavailable(
            "the workflow did not answer in time; look at the payment before trying again"
        ) from exc
    return result


def staff_update_id(staff_id: object, request_id: str) -> str:
    """A staff decision's update id, from who sends it and the request's `X-Request-ID`: a
    console or script that resends a decision it heard no answer to, under the same request id,
    gets the first decision's answer and never decides twice."""
    return f"staff-{staff_id}-{request_id}"


def _failure_message(cause: BaseException) -> str:
    message = getattr(cause, "message", None) or str(cause)
    return str(message)[:500] or "the workflow refused the request"
