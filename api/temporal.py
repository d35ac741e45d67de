"""The API's Temporal client, connected on first use: the API starts even while Temporal is down."""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.errors import ServiceUnavailable


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
