"""Prometheus metrics for the API: request counts and latencies by route template."""

from __future__ import annotations

import time
from collections.abc import Sequence

from fastapi import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "brokerflow_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "brokerflow_http_request_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=self.registry,
        )
        self.unmatched_funds = Counter(
            "brokerflow_unmatched_funds",
            "Verified payments queued as unmatched funds (webhook path), by processor and reason",
            ["provider", "reason"],
            registry=self.registry,
        )

    def unmatched_funds_queued(self, provider: str, reason: str) -> None:
        """A verified payment no deposit booked was queued for finance: alert on any increase."""
        self.unmatched_funds.labels(provider, reason).inc()

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class CountRequests:
    """The middleware: each answer counted by the metrics of the app's current run
    (`app.state.metrics`), its latency taken when the answer starts (status and headers sent), as
    the `BaseHTTPMiddleware` it replaces did. A plain ASGI middleware: no task and memory streams
    per request. A request whose handler raises before answering is not counted (the 500 comes
    from the outermost error middleware), as before."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        metrics: ApiMetrics = app.state.metrics
        method: str = scope["method"]
        route = _route_template(app.router.routes, scope)
        started = time.perf_counter()

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                metrics.latency.labels(method, route).observe(time.perf_counter() - started)
                metrics.requests.labels(method, route, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, send_counted)


def _route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    # Templates, not raw paths: one time series per route, not one per client id.
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "unmatched"))
    return "unmatched"
