"""Dealer-plugin revenue (`DealerRevenue`, docs/revenue.md): one step computes each server's
trade deals ingested since its cursor (`db.queries.revenue.refresh_deal_revenue`); meant to be
run by a Temporal Schedule every minute or so. A range given (`since`/`until`) is computed again
instead (a dealer's correction older than the overlap)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from contracts.policies import BULK
from contracts.process import Process
from contracts.steps import Step
from domain.frozen import Frozen as Contract

DEALER_REVENUE_SCHEDULE = "dealer-revenue"


class DealerRevenueInput(Contract):
    """No servers: every server the ingestion follows."""

    servers: list[str] = Field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None


class DealerRevenueComputed(Contract):
    """Per server: the deals computed and whether the server is caught up."""

    deals: dict[str, int] = Field(default_factory=dict)
    caught_up: dict[str, bool] = Field(default_factory=dict)


DEALER_REVENUE = Process("DealerRevenue", DealerRevenueInput, DealerRevenueComputed)

# Upserts keyed by (server, deal) and a cursor moved in the same transaction: a retried
# attempt computes the same figures again.
refresh_dealer_revenue = Step(
    "refresh_dealer_revenue", DealerRevenueInput, DealerRevenueComputed, BULK
)
