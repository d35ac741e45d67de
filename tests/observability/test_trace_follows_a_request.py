"""One trace from the HTTP request through the workflow and activity to the MT5 HTTP call."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import AsyncExitStack

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from mt5_adapter.webapi import gateway_for
from observability.tracing import configure_tracing
from settings import Settings
from tests.conftest import TRACING_NAMESPACE, app_client, make_settings, mt5_settings_for
from tests.e2e.helpers import new_applicant
from tests.support.database import ProvisionedDatabase
from tests.support.processes import Simulator
from worker import build_workers


@pytest.fixture
def exporter(settings: Settings) -> InMemorySpanExporter:
    provider = configure_tracing("brokerflow-test", settings)
    assert isinstance(provider, TracerProvider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


async def test_signup_trace_reaches_the_mt5_call(
    exporter: InMemorySpanExporter,
    test_db: ProvisionedDatabase,
    temporal_env: WorkflowEnvironment,
    mt5_sim: Simulator,
) -> None:
    mt5 = mt5_settings_for(mt5_sim, name=f"trace{uuid.uuid4().hex[:6]}")
    settings = make_settings(
        test_db.owner_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_namespace=TRACING_NAMESPACE,
        mt5=mt5,
    )
    HTTPXClientInstrumentor().instrument()
    client = await Client.connect(
        settings.temporal_address,
        namespace=TRACING_NAMESPACE,
        data_converter=temporal_env.client.data_converter,
        interceptors=[TracingInterceptor()],
    )
    engine = create_engine(app_database_url(test_db.owner_url, settings), pool_size=2)
    gateway = gateway_for(mt5)
    try:
        async with AsyncExitStack() as stack:
            workers = build_workers(
                client,
                create_sessionmaker(engine),
                SecretBox(settings.secrets_key),
                {mt5.name: gateway},
                [mt5],
            )
            for worker in workers:
                await stack.enter_async_context(worker)
            async for api in app_client(create_app(settings)):
                response = await api.post("/v1/signup", json=new_applicant())
                assert response.status_code == 202, response.text
                handle = client.get_workflow_handle(
                    f"account-opening-{response.json()['application_id']}"
                )
                await asyncio.wait_for(handle.result(), timeout=60)
    finally:
        await gateway.aclose()
        await engine.dispose()
        HTTPXClientInstrumentor().uninstrument()

    deadline = time.monotonic() + 5
    spans = exporter.get_finished_spans()
    while time.monotonic() < deadline and not any(
        "user/add" in s.name or "user/add" in str(s.attributes) for s in spans
    ):
        await asyncio.sleep(0.1)
        spans = exporter.get_finished_spans()

    request_span = next(
        s for s in spans if s.name.startswith("POST /v1/signup") and s.kind == trace.SpanKind.SERVER
    )
    trace_id = request_span.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    names = {s.name for s in in_trace}
    assert any(n.startswith("StartWorkflow:AccountOpening") for n in names), names
    assert any(n.startswith("RunWorkflow:AccountOpening") for n in names), names
    assert any(n.startswith("RunActivity:create_mt5_user") for n in names), names
    mt5_calls = [
        s
        for s in in_trace
        if s.kind == trace.SpanKind.CLIENT
        and "user/add"
        in str((s.attributes or {}).get("url.full", (s.attributes or {}).get("http.url", "")))
    ]
    assert mt5_calls, sorted(names)
