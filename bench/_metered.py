"""BrokerFlow's processes as deployed, with their event loop's CPU counted per step: for
`bench/deposits.py`, which runs each of them as its own process.

    python -m bench._metered worker                     # worker.main(), as `python worker.py`
    python -m bench._metered api                        # api.__main__.main(), as `python -m api`
    python -m bench._metered bare ADDRESS QUEUE         # the baseline's worker (bench/_bare.py)

Each runs the production entry point unchanged, with two things added:

* every asyncio task of the process is metered: the CPU of the event-loop thread spent in each
  of its steps (`time.thread_time` around each `send`) is added to the task's *label*. A label is
  a context variable, set by the activity interceptor (`step <activity type>`, `local` for a
  local activity) and by an ASGI wrapper round the API (`<METHOD> <route>`); tasks started
  under it inherit it. Unlabelled tasks are counted by their coroutine's name (Temporal's own
  polling and activations). Workflow code itself runs on the SDK's worker threads, not the
  loop: it shows in the process's thread split, not here. Cost: two clock reads per task step.
* signals from the bench: SIGUSR1 zeroes the counts, SIGUSR2 writes them (JSON: label ->
  [cpu seconds, steps, calls]) to `$BENCH_METER_FILE`. With `$BENCH_CPROFILE` set to a path the
  loop thread also runs under cProfile between those signals, its stats written there.
"""

from __future__ import annotations

import asyncio
import contextvars
import cProfile
import json
import os
import re
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Generator, MutableMapping
from typing import Any

LABEL: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_label", default=None)
# label -> [loop-thread CPU seconds, task steps, calls (labelled entries)]
COUNTS: defaultdict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
PROFILE: list[cProfile.Profile] = []
IDS = re.compile(r"/(?:[0-9a-f]{8}-[0-9a-f-]{27}|\d+)(?=/|$)")


class MeteredCoroutine(Coroutine[Any, Any, Any]):
    """A task's coroutine, each step of which adds its CPU to the task's current label."""

    __slots__ = ("_inner", "_name")

    def __init__(self, inner: Coroutine[Any, Any, Any]) -> None:
        self._inner = inner
        self._name = f"task {getattr(inner, '__qualname__', type(inner).__name__)}"

    def _count(self, begun: float) -> None:
        entry = COUNTS[LABEL.get() or self._name]
        entry[0] += time.thread_time() - begun
        entry[1] += 1

    def send(self, value: Any) -> Any:
        begun = time.thread_time()
        try:
            return self._inner.send(value)
        finally:
            self._count(begun)

    def throw(self, *args: Any) -> Any:
        begun = time.thread_time()
        try:
            return self._inner.throw(*args)
        finally:
            self._count(begun)

    def close(self) -> None:
        self._inner.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._inner.__await__()

    def __getattr__(self, name: str) -> Any:  # cr_frame, cr_running...: anyio inspects them
        return getattr(self._inner, name)


def _task_factory(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
) -> asyncio.Task[Any]:
    return asyncio.Task(MeteredCoroutine(coro), loop=loop, **kwargs)


async def labelled(label: str, call: Awaitable[Any]) -> Any:
    token = LABEL.set(label)
    COUNTS[label][2] += 1
    try:
        return await call
    finally:
        LABEL.reset(token)


def _reset(*_: object) -> None:
    COUNTS.clear()
    if os.environ.get("BENCH_CPROFILE"):
        if PROFILE:
            PROFILE[0].disable()
        PROFILE[:] = [cProfile.Profile()]
        PROFILE[0].enable()


def _dump(*_: object) -> None:
    if PROFILE:
        PROFILE[0].disable()
        PROFILE[0].dump_stats(os.environ["BENCH_CPROFILE"])
    path = os.environ["BENCH_METER_FILE"]
    with open(f"{path}.tmp", "w") as out:
        json.dump(dict(COUNTS), out)
    os.replace(f"{path}.tmp", path)


def install() -> None:
    """Meter every task of the loop about to run; hear the bench's signals."""
    signal.signal(signal.SIGUSR1, _reset)
    signal.signal(signal.SIGUSR2, _dump)
    original = asyncio.events.new_event_loop

    def metered_loop() -> asyncio.AbstractEventLoop:
        loop = original()
        loop.set_task_factory(_task_factory)  # type: ignore[arg-type]
        return loop

    asyncio.new_event_loop = metered_loop  # asyncio.run calls it
    asyncio.events.new_event_loop = metered_loop
    try:
        import uvloop  # uvicorn's loop when it is installed (as in production)
    except ImportError:
        return
    uvloop_loop = uvloop.new_event_loop

    def metered_uvloop() -> asyncio.AbstractEventLoop:
        loop = uvloop_loop()
        loop.set_task_factory(_task_factory)  # type: ignore[arg-type]
        return loop

    uvloop.new_event_loop = metered_uvloop  # type: ignore[assignment]


def step_interceptor() -> Any:
    from temporalio import activity
    from temporalio.worker import (
        ActivityInboundInterceptor,
        ExecuteActivityInput,
        Interceptor,
    )

    class Inbound(ActivityInboundInterceptor):
        async def execute_activity(self, input: ExecuteActivityInput) -> Any:
            info = activity.info()
            kind = "local" if info.is_local else "step"
            return await labelled(f"{kind} {info.activity_type}", super().execute_activity(input))

    class StepMeter(Interceptor):
        def intercept_activity(
            self, next: ActivityInboundInterceptor
        ) -> ActivityInboundInterceptor:
            return Inbound(next)

    return StepMeter()


def run_worker() -> None:
    import temporalio.worker

    import worker

    class MeteredWorker(temporalio.worker.Worker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["interceptors"] = [*kwargs.get("interceptors", []), step_interceptor()]
            super().__init__(*args, **kwargs)

    worker.Worker = MeteredWorker  # type: ignore[attr-defined]  # `build_workers` builds it
    worker.main()


Scope = MutableMapping[str, Any]
Asgi = Callable[[Scope, Any, Any], Awaitable[None]]


def metered_app(app: Asgi) -> Asgi:
    async def call(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        await labelled(
            f"{scope['method']} {IDS.sub('/{id}', scope['path'])}", app(scope, receive, send)
        )

    return call


def run_api() -> None:
    import api.__main__ as api_main

    create_app: Callable[[Any], Asgi] = api_main.create_app  # type: ignore[attr-defined]

    def metered_create_app(settings: Any) -> Asgi:
        return metered_app(create_app(settings))

    api_main.create_app = metered_create_app  # type: ignore[attr-defined,assignment]
    api_main.main()


def run_bare(address: str, queue: str) -> None:
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Worker

    from bench._bare import BareWorkflow, noop

    async def serve() -> None:
        client = await Client.connect(address, data_converter=pydantic_data_converter)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        async with Worker(
            client,
            task_queue=queue,
            workflows=[BareWorkflow],
            activities=[noop],
            interceptors=[step_interceptor()],
        ):
            print("bare worker running", flush=True)
            await stop.wait()

    asyncio.run(serve())


if __name__ == "__main__":
    install()
    role = sys.argv[1]
    if role == "worker":
        run_worker()
    elif role == "api":
        run_api()
    elif role == "bare":
        run_bare(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(f"unknown role {role!r}: worker, api or bare")
