"""Prometheus metrics for the API: request counts and latencies by route template."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.routing import Match


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

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        route = _route_template(request)
        started = time.perf_counter()
        response = await call_next(request)
        self.latency.labels(request.method, route).observe(time.perf_counter() - started)
        self.requests.labels(request.method, route, str(response.status_code)).inc()
        return response

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


async def count_request(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """The middleware: counted by the metrics of the app's current run (`app.state.metrics`)."""
    metrics: ApiMetrics = request.app.state.metrics
    return await metrics.middleware(request, call_next)


def _route_template(request: Request) -> str:
    # Templates, not raw paths: one time series per route, not one per client id.
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "unmatched"))
    return "unmatched"
