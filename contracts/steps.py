"""One typed stub per step: what a workflow calls, what an activity implements and what the
worker registers, so that mypy checks the argument and the result on both sides.

    reserve_mt5_login = Step("reserve_mt5_login", ReserveLoginInput, int, policies.DATABASE)

    login = await reserve_mt5_login(ReserveLoginInput(...))         # in a workflow: an int

    @implements(reserve_mt5_login)                                  # in an activities class
    async def reserve_mt5_login(self, request: ReserveLoginInput) -> int: ...

A step's name is its activity's name in Temporal's history: it never changes once deployed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar, overload

from temporalio import activity, workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as StepTimedOut

from contracts import mt5_task_queue
from contracts.policies import Policy

A = TypeVar("A")
R = TypeVar("R")
Self_ = TypeVar("Self_")
_STEP_ATTRIBUTE = "__brokerflow_step__"
_DECLARED: dict[str, _Stub[Any, Any]] = {}


@dataclass(frozen=True)
class _Stub(Generic[A, R]):
    name: str
    argument: type[A]
    result: type[R]
    policy: Policy = field(compare=False)

    def __post_init__(self) -> None:
        # The same declaration seen twice (a module imported again) is one step; two different
        # steps under one name would send one's argument to the other's activity.
        known = _DECLARED.get(self.name)
        if known is not None and _signature(known) != _signature(self):
            raise ValueError(f"two different steps are called {self.name!r}")
        _DECLARED[self.name] = self

    async def _run(self, argument: A, task_queue: str | None) -> R:
        result = await workflow.execute_activity(
            self.name,
            argument,
            task_queue=task_queue,
            start_to_close_timeout=self.policy.timeout,
            schedule_to_close_timeout=self.policy.give_up_after,
            retry_policy=self.policy.retry,
            heartbeat_timeout=self.policy.heartbeat,
            result_type=temporal_result_type(self.result),
        )
        return result  # type: ignore[no-any-return]


class Step(_Stub[A, R]):
    """A step on the calling workflow's own task queue (`TASK_QUEUE` in production): our
    database, a processor, the mail server."""

    async def __call__(self, argument: A) -> R:
        return await self._run(argument, None)

    async def local(self, argument: A) -> R:
        """The same step as a local activity: run by the worker that runs the workflow, inside
        its workflow task, with the same timeout and retries, and recorded in the history as a
        marker when the task completes. It saves the server's round trips (schedule, poll,
        start, complete, a new workflow task), so it suits short database steps.

        What it changes: a worker that dies during the task runs the step again on the next
        worker (as a lost activity's retry would: the step must be idempotent, as every step
        is); and the workflow issues other commands, so a workflow that switches a step to
        `local` does so under `workflow.patched` (docs/architecture.md). A step that heartbeats
        (a long one) cannot run locally."""
        if self.policy.heartbeat is not None:
            raise TypeError(f"{self.name} heartbeats: it runs as an activity, not locally")
        try:
            result = await workflow.execute_local_activity(
                self.name,
                argument,
                start_to_close_timeout=self.policy.timeout,
                schedule_to_close_timeout=self.policy.give_up_after,
                retry_policy=self.policy.retry,
                local_retry_threshold=LOCAL_RETRY_THRESHOLD,
                result_type=temporal_result_type(self.result),
            )
        except (ApplicationError, StepTimedOut) as failure:
            # A local step's failure reaches the workflow bare, an activity's inside an
            # ActivityError: raised as an activity's, a step fails one way wherever it ran
            # (the workflows' `except ActivityError` handle both).
            raise ActivityError(
                f"local step {self.name} failed",
                scheduled_event_id=0,
                started_event_id=0,
                identity="",
                activity_type=self.name,
                activity_id="",
                retry_state=None,
            ) from failure
        return result  # type: ignore[no-any-return]

    async def run(self, argument: A, *, local: bool) -> R:
        """`local()` or `__call__()`, as the workflow chose (see `local`)."""
        return await (self.local(argument) if local else self(argument))


# A local step's retry that waits longer than this is scheduled as a durable timer instead of a
# sleep in the worker (Temporal's default, written down: the database policies stay under it).
LOCAL_RETRY_THRESHOLD = timedelta(minutes=1)


class Mt5Step(_Stub[A, R]):
    """A step on one MT5 server's task queue, so that a slow server never stalls another."""

    async def __call__(self, server: str, argument: A) -> R:
        return await self._run(argument, mt5_task_queue(server))


def temporal_result_type(result: type[Any]) -> Any:
    """What Temporal is told to decode a result as: a contract writes "no result" as
    `type(None)` (a type, so mypy can check it), Temporal wants None."""
    return None if result is type(None) else result


def _signature(step: _Stub[Any, Any]) -> tuple[str, str, str]:
    return (type(step).__name__, step.argument.__qualname__, step.result.__qualname__)


class implements(Generic[A, R]):
    """Mark an activities-class method (or a test's fake function) as the implementation of
    `step`: mypy checks that it takes the step's argument and returns its result."""

    def __init__(self, step: _Stub[A, R]) -> None:
        self.step = step

    @overload
    def __call__(self, function: Callable[[A], Awaitable[R]]) -> Callable[[A], Awaitable[R]]: ...

    @overload
    def __call__(
        self, function: Callable[[Self_, A], Awaitable[R]]
    ) -> Callable[[Self_, A], Awaitable[R]]: ...

    def __call__(self, function: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
        heartbeat = self.step.policy.heartbeat
        if heartbeat is not None:
            function = _heartbeating(function, heartbeat / HEARTBEATS_PER_TIMEOUT)
        setattr(function, _STEP_ATTRIBUTE, self.step)
        return activity.defn(name=self.step.name)(function)


# A step with a heartbeat timeout beats this many times within it: one late beat is no death.
HEARTBEATS_PER_TIMEOUT = 4


def _heartbeating(
    function: Callable[..., Awaitable[R]], every: timedelta
) -> Callable[..., Awaitable[R]]:
    """`function`, heartbeating every `every` while it runs (its work may sit in a thread)."""

    @functools.wraps(function)
    async def beating(*args: Any, **kwargs: Any) -> R:
        async def beat() -> None:
            while True:
                activity.heartbeat()
                await asyncio.sleep(every.total_seconds())

        beats = asyncio.create_task(beat())
        try:
            return await function(*args, **kwargs)
        finally:
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats

    return beating


def implementations(
    kind: type[Step[Any, Any]] | type[Mt5Step[Any, Any]], *providers: object
) -> dict[str, Callable[..., Any]]:
    """The methods of `providers` that implement a step of `kind`, bound, by step name. A step
    implemented twice, or a step of the other kind among these providers (it would be polled on
    the wrong task queue and never run), is refused."""
    found: dict[str, Callable[..., Any]] = {}
    for provider in providers:
        for attribute in dir(type(provider)):
            step = getattr(getattr(type(provider), attribute), _STEP_ATTRIBUTE, None)
            if step is None:
                continue
            if type(step) is not kind:
                raise TypeError(f"{step.name} is not a {kind.__name__}: it runs on another queue")
            if step.name in found:
                raise TypeError(f"{step.name} is implemented twice")
            found[step.name] = getattr(provider, attribute)
    return found


def unimplemented(
    kind: type[Step[Any, Any]] | type[Mt5Step[Any, Any]], implemented: Mapping[str, object]
) -> list[str]:
    """The declared steps of `kind` (in every contract module imported) that `implemented`
    lacks: a workflow calling one would wait for an activity no worker polls for."""
    return sorted(
        name for name, step in _DECLARED.items() if type(step) is kind and name not in implemented
    )
