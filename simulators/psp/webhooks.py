"""Webhook delivery as real processors do it: retried with exponential back-off until the receiver
answers 2xx, each attempt signed afresh; plus the faults they show: late, twice, out of order."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger("simulators.psp.webhooks")

# Headers for (body, unix timestamp): the provider's signature scheme.
Signer = Callable[[str, int], dict[str, str]]
MAX_RETRY_DELAY_S = 30.0


@dataclass
class DeliveryFaults:
    delay_ms: int = 0
    duplicate_probability: float = 0.0
    reorder_window: int = 0  # hold this many events and send them shuffled
    drop_probability: float = 0.0  # never sent at all: only the processor's event list has it


@dataclass
class Delivered:
    """One copy of an event on its way; updated in place while it is retried."""

    provider: str
    event: str
    body: str
    status: int | None = None  # HTTP status of the latest attempt (None: no answer)
    attempts: int = 0
    signed_at: list[int] = field(default_factory=list)  # the timestamp each attempt was signed at
    outcome: str = "pending"  # pending | delivered | failed (retries exhausted) | no_url | dropped


@dataclass
class Held:
    provider: str
    event: str
    body: str
    sign: Signer


@dataclass
class Outbox:
    url: str | None
    retries: int = 8
    retry_base_ms: int = 500
    faults: DeliveryFaults = field(default_factory=DeliveryFaults)
    log: list[Delivered] = field(default_factory=list)
    _held: list[Held] = field(default_factory=list)
    _random: random.Random = field(default_factory=lambda: random.Random(0))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # One client for every delivery: building one loads CA certificates, ~0.1 s of blocked loop.
    _client: httpx.AsyncClient | None = None

    def send(self, provider: str, event: str, body: str, sign: Signer) -> None:
        if self._random.random() < self.faults.drop_probability:
            self.log.append(Delivered(provider, event, body, outcome="dropped"))
            return
        copies = 2 if self._random.random() < self.faults.duplicate_probability else 1
        self._held.extend(Held(provider, event, body, sign) for _ in range(copies))
        if len(self._held) >= max(1, self.faults.reorder_window):
            self._random.shuffle(self._held)
            self.flush()

    def flush(self) -> None:
        """Send whatever the reorder window still holds."""
        batch, self._held = self._held, []
        for held in batch:
            self.background(self._deliver(held))

    def background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` (a delivery, BankCo's settlement later) without awaiting it."""
        # The loop keeps only weak references to tasks: hold them until they finish.
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait after the `attempt`-th failed attempt (1-based)."""
        return min(self.retry_base_ms / 1000 * 2.0 ** (attempt - 1), MAX_RETRY_DELAY_S)

    async def _deliver(self, held: Held) -> None:
        entry = Delivered(held.provider, held.event, held.body)
        self.log.append(entry)
        await asyncio.sleep(self.faults.delay_ms / 1000)
        if not self.url:
            entry.outcome = "no_url"
            return
        url = f"{self.url.rstrip('/')}/{held.provider}"
        self._client = self._client or httpx.AsyncClient(timeout=10)
        while True:
            # Signed now, not when the event happened: a late retry must not look stale.
            timestamp = int(time.time())
            entry.attempts += 1
            entry.signed_at.append(timestamp)
            headers = {"Content-Type": "application/json", **held.sign(held.body, timestamp)}
            try:
                response = await self._client.post(url, content=held.body, headers=headers)
                entry.status = response.status_code
            except httpx.HTTPError as exc:
                entry.status = None
                log.warning("webhook %s to %s failed: %r", held.event, url, exc)
            if entry.status is not None and 200 <= entry.status < 300:
                entry.outcome = "delivered"
                return
            if entry.attempts > self.retries:
                entry.outcome = "failed"
                log.warning("webhook %s to %s given up after %d", held.event, url, entry.attempts)
                return
            await asyncio.sleep(self.retry_delay(entry.attempts))
