"""Trade ingestion's figures and alerts as Prometheus gauges in the API's registry (its
/metrics), set from `ingestion_state` at each scrape by `api.console.ingestion_service`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge


@dataclass(frozen=True)
class ServerFigures:
    server: str
    watermark: datetime | None
    lag_seconds: float
    rows_per_second: float
    deals_ingested: int
    last_poll_at: datetime | None
    last_error_at: datetime | None
    alerts: frozenset[str]  # kinds raised


class IngestionGauges:
    def __init__(self, registry: CollectorRegistry) -> None:
        def gauge(name: str, about: str, *labels: str) -> Gauge:
            return Gauge(name, about, ["server", *labels], registry=registry)

        self.watermark = gauge(
            "brokerflow_ingestion_watermark_seconds", "newest deal time ingested (Unix)"
        )
        self.lag = gauge("brokerflow_ingestion_lag_seconds", "deal time to its commit, last poll")
        self.rate = gauge("brokerflow_ingestion_rows_per_second", "deals written per second")
        self.deals = gauge("brokerflow_ingestion_deals_ingested", "deals written, all time")
        self.last_poll = gauge(
            "brokerflow_ingestion_last_poll_seconds", "the deal follower's heartbeat (Unix)"
        )
        self.last_error = gauge(
            "brokerflow_ingestion_last_error_seconds",
            "when a poll last failed (Unix; the text is on /console/ingestion)",
        )
        self.alerts = gauge(
            "brokerflow_ingestion_alerts", "1 while the alert is raised (stuck, failing)", "kind"
        )

    def publish(self, servers: Iterable[ServerFigures], kinds: Iterable[str]) -> None:
        kinds = tuple(kinds)
        for s in servers:
            if s.watermark is not None:
                self.watermark.labels(s.server).set(s.watermark.timestamp())
            self.lag.labels(s.server).set(s.lag_seconds)
            self.rate.labels(s.server).set(s.rows_per_second)
            self.deals.labels(s.server).set(s.deals_ingested)
            if s.last_poll_at is not None:
                self.last_poll.labels(s.server).set(s.last_poll_at.timestamp())
            if s.last_error_at is not None:
                self.last_error.labels(s.server).set(s.last_error_at.timestamp())
            for kind in kinds:
                self.alerts.labels(s.server, kind).set(1 if kind in s.alerts else 0)
