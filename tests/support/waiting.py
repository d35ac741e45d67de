"""Waiting in tests: for a condition, with a deadline, never for a span of wall-clock time that
assumes how fast the machine is. The one pause is between two looks at the condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

POLL_SECONDS = 0.05


class NotWithin(AssertionError):
    """The condition did not hold before the deadline (a test failure, like any assertion)."""


async def eventually(probe: Callable[[], Any], what: str, timeout: float) -> Any:
    """The first truthy answer of `probe` (sync or async), asked again until `timeout` seconds
    have passed; then the test fails naming `what` it waited for."""
    give_up = time.monotonic() + timeout
    while True:
        answer = probe()
        if asyncio.iscoroutine(answer):
            answer = await answer
        if answer:
            return answer
        if time.monotonic() > give_up:
            raise NotWithin(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(POLL_SECONDS)


def until(probe: Callable[[], Any], what: str, timeout: float) -> Any:
    """`eventually` for synchronous tests."""
    give_up = time.monotonic() + timeout
    while not (answer := probe()):
        if time.monotonic() > give_up:
            raise NotWithin(f"not within {timeout:g} s: {what}")
        time.sleep(POLL_SECONDS)
    return answer
