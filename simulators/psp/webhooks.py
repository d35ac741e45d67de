"""Webhook delivery with the faults real processors show: late, twice, out of order."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger("simulators.psp.webhooks")


@dataclass
class DeliveryFaults:
    delay_ms: int = 0
    duplicate_probability: float = 0.0
    reorder_window: int = 0  # hold this many events and send them shuffled


@dataclass
class Delivered:
    provider: str
    event: str
    body: str
    status: int | None


@dataclass
class Outbox:
    url: str | None
    faults: DeliveryFaults = field(default_factory=DeliveryFaults)
    log: list[Delivered] = field(default_factory=list)
    _held: list[tuple[str, str, str, dict[str, str]]] = field(default_factory=list)
    _random: random.Random = field(default_factory=lambda: random.Random(0))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def send(
        self, provider: str, event: str, payload: dict[str, Any], headers: dict[str, str]
    ) -> None:
        body = json.dumps(payload, separators=(",", ":"))
        copies = 2 if self._random.random() < self.faults.duplicate_probability else 1
        for _ in range(copies):
            self._held.append((provider, event, body, headers))
        if len(self._held) >= max(1, self.faults.reorder_window):
            batch, self._held = self._held, []
            self._random.shuffle(batch)
            for item in batch:
                task = asyncio.get_running_loop().create_task(self._deliver(*item))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def flush(self) -> None:
        """Send whatever the reorder window still holds."""
        batch, self._held = self._held, []
        for item in batch:
            task = asyncio.get_running_loop().create_task(self._deliver(*item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, provider: str, event: str, body: str, headers: dict[str, str]) -> None:
        await asyncio.sleep(self.faults.delay_ms / 1000)
        status = None
        if self.url:
            try:
                async with httpx.AsyncClient(timeout=10) as client:
                    response = await client.post(
                        f"{self.url.rstrip('/')}/{provider}",
                        content=body,
                        headers={"Content-Type": "application/json", **headers},
                    )
                    status = response.status_code
            except httpx.HTTPError as exc:
                log.warning("webhook %s to %s failed: %r", event, self.url, exc)
        self.log.append(Delivered(provider, event, body, status))
