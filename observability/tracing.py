"""OpenTelemetry set-up shared by the API and the worker; the exporter is a setting.

With `BROKERFLOW_OTEL_EXPORTER=none` nothing is exported, but request spans still get ids:
JSON log lines and audit rows carry the request's trace id (docs/architecture.md,
"Observability"). The provider then samples nothing (spans are the API's non-recording spans:
ids, no attributes, no events, no span processing) until a span processor is attached (a test's
in-memory exporter); `records_spans` tells the API and the worker whether SQL spans are worth
instrumenting at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.asgi import asgi_getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes
from starlette.types import ASGIApp, Receive, Scope, Send

from settings import Settings


class _WhileProcessed(Sampler):
    """The SDK's default (parent-based, always on) once a span processor is attached; before
    that, every span is dropped: a non-recording span with valid ids, nearly free."""

    def __init__(self) -> None:
        self.on = False
        self._default = ParentBased(ALWAYS_ON)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if self.on:
            return self._default.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return "WhileProcessed{ParentBased{root:AlwaysOnSampler}}"


class _BrokerFlowTracerProvider(TracerProvider):
    """A provider that records spans only once something processes them."""

    def __init__(self, resource: Resource) -> None:
        self._while_processed = _WhileProcessed()
        super().__init__(resource=resource, sampler=self._while_processed)

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        self._while_processed.on = True

    @property
    def records(self) -> bool:
        return self._while_processed.on


def configure_tracing(service_name: str, settings: Settings) -> TracerProvider:
    """Install a global tracer provider once per process and return it."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = _BrokerFlowTracerProvider(Resource.create({"service.name": service_name}))
    exporter = _exporter(settings)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def records_spans() -> bool:
    """Whether spans of this process are recorded (an exporter or another span processor is
    attached). False with exporter `none`: SQL spans are then not instrumented at all."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, _BrokerFlowTracerProvider):
        return provider.records
    # Someone else's SDK provider (always records) or the API's no-op one (records nothing).
    return isinstance(provider, TracerProvider)


class RequestSpan:
    """What the OpenTelemetry ASGI middleware does that still matters when spans are not
    recorded, at a fraction of its cost: the request runs in a span of its own (a server span
    in the caller's trace when a `traceparent` header names one, as the instrumentation does),
    so log lines and audit rows carry its trace id and Temporal calls pass it on. Wraps the
    whole app, the error middleware included (the 500 handler's log line has the trace id)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.tracer = trace.get_tracer("brokerflow.api")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = None
        if trace.get_current_span() is trace.INVALID_SPAN:
            parent = propagate.extract(cast(dict[str, Any], scope), getter=asgi_getter)
            token = context.attach(parent)
            kind = SpanKind.SERVER
        else:  # called in-process from inside a span (tests)
            parent = context.get_current()
            kind = SpanKind.INTERNAL
        span = self.tracer.start_span("HTTP request", context=parent, kind=kind)
        try:
            with trace.use_span(span, end_on_exit=True):
                await self.app(scope, receive, send)
        finally:
            if token is not None:
                context.detach(token)


def _exporter(settings: Settings) -> SpanExporter | None:
    if settings.otel_exporter == "console":
        return ConsoleSpanExporter()
    if settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=f"{settings.otel_endpoint.rstrip('/')}/v1/traces")
    return None
