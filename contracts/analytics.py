"""The reporting aggregates' refresh (`Analytics`, run by the `analytics` Temporal Schedule every
`analytics.interval`): one step replaces each server's daily aggregate rows from the deals'
watermark on (docs/reporting.md). A back-fill of past days (a dealer's correction older than
the last refresh) is the same workflow with `first`/`last` set."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from contracts.policies import BULK
from contracts.process import Process
from contracts.steps import Step
from domain.frozen import Frozen as Contract

ANALYTICS_SCHEDULE = "analytics"


def analytics_workflow_id(first: date | None = None, last: date | None = None) -> str:
    return f"analytics-{first}-{last}" if first else ANALYTICS_SCHEDULE


class AnalyticsInput(Contract):
    """No servers: every server the ingestion follows. `first`/`last` (UTC days, inclusive):
    recompute exactly those days instead of the days from each server's watermark on."""

    servers: list[str] = Field(default_factory=list)
    first: date | None = None
    last: date | None = None


class RefreshAggregates(Contract):
    servers: list[str] = Field(default_factory=list)
    first: date | None = None
    last: date | None = None


class AggregatesRefreshed(Contract):
    """Per server: the days recomputed (`YYYY-MM-DD..YYYY-MM-DD`) and the rows written."""

    days: dict[str, str] = Field(default_factory=dict)
    rows: dict[str, int] = Field(default_factory=dict)


ANALYTICS = Process("Analytics", AnalyticsInput, AggregatesRefreshed)

# Days are replaced whole in one transaction per server: a retried attempt writes the same rows.
refresh_aggregates = Step("refresh_aggregates", RefreshAggregates, AggregatesRefreshed, BULK)
