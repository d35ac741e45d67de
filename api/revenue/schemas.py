"""The dealer-revenue API's shapes (docs/revenue.md): the mirrored dealer-plugin rules, each
deal's revenue figures, totals, slippage patterns and the mirror check. Amounts are decimal
strings in `currency` (XXX: a login BrokerFlow does not know); points are the symbol's points."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.analytics.access import Day
from api.schemas import Note

SERVER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ServerName = Annotated[str, Path(pattern=SERVER_PATTERN, description="an MT5 server's name")]
# The UTC days a figure covers, as the API and the console page take them.
First = Annotated[Day | None, Query(description="first UTC day (default: last)")]
Last = Annotated[Day | None, Query(description="last UTC day, included (default: today)")]
Mask = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$"),
]
GatewayName = Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")]


class DealerRuleIn(BaseModel):
    """One rule of the dealer plugin, as configured on the MT5 server: the first rule whose
    group mask and symbol mask (`*`, `?`) match applies; `markup_points` on the client's price;
    `a_book` deals go to the LP `gateway` (a B-book rule's gateway is ignored)."""

    model_config = ConfigDict(extra="forbid")

    group_mask: Mask
    symbol_mask: Mask = "*"
    markup_points: int = Field(default=0, ge=0, le=1_000_000)
    a_book: bool = False
    gateway: GatewayName = Field(
        default="", description="A-book: the LP gateway its deals carry (empty: any)"
    )


class DealerRulesSet(BaseModel):
    """The server's whole rule list, in the plugin's order (an empty list: no rule mirrored)."""

    model_config = ConfigDict(extra="forbid")

    rules: list[DealerRuleIn] = Field(max_length=500)
    reason: Note | None = None


class DealerRuleView(DealerRuleIn):
    position: int
    set_by: str
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> DealerRuleView:
        return cls(
            position=row.position,
            group_mask=row.group_mask,
            symbol_mask=row.symbol_mask,
            markup_points=row.markup_points,
            a_book=row.a_book,
            gateway=row.gateway,
            set_by=row.set_by,
            updated_at=row.updated_at,
        )


class DealRevenueView(BaseModel):
    deal: int
    time: datetime
    login: int
    symbol: str
    group: str | None
    currency: str
    action: int
    entry: int
    order: int
    order_type: int | None
    position_id: int
    book: str = Field(description="A (routed to `gateway`) or B")
    gateway: str
    lots: Decimal
    spread_points: Decimal | None
    markup_points: Decimal | None
    slippage_points: Decimal | None
    gateway_slippage_points: Decimal | None
    spread_captured: Decimal | None
    markup: Decimal | None
    commission_revenue: Decimal
    fee_revenue: Decimal
    b_book_pnl: Decimal
    a_book_cost: Decimal | None

    @classmethod
    def of(cls, row: Any) -> DealRevenueView:
        return cls(
            deal=row["deal"],
            time=row["time"],
            login=row["login"],
            symbol=row["symbol"],
            group=row["group_name"],
            currency=row["currency"],
            action=row["action"],
            entry=row["entry"],
            order=row["order_ticket"],
            order_type=row["order_type"],
            position_id=row["position_id"],
            book="A" if row["a_book"] else "B",
            gateway=row["gateway"],
            lots=row["lots"],
            spread_points=row["spread_points"],
            markup_points=row["markup_points"],
            slippage_points=row["slippage_points"],
            gateway_slippage_points=row["gateway_slippage_points"],
            spread_captured=row["spread_captured"],
            markup=row["markup"],
            commission_revenue=row["commission_revenue"],
            fee_revenue=row["fee_revenue"],
            b_book_pnl=row["b_book_pnl"],
            a_book_cost=row["a_book_cost"],
        )


class RevenueTotal(BaseModel):
    currency: str
    book: str
    deals: int
    lots: Decimal
    spread_captured: Decimal
    markup: Decimal
    commission_revenue: Decimal
    fee_revenue: Decimal
    b_book_pnl: Decimal
    a_book_cost: Decimal
    without_market: int = Field(description="deals without a raw quote (no spread or markup)")


class FloatingPnl(BaseModel):
    currency: str
    amount: Decimal


class RevenueSummary(BaseModel):
    server: str
    since: datetime
    until: datetime
    totals: list[RevenueTotal]
    floating_b_book_pnl: list[FloatingPnl] = Field(
        description="the house's floating P&L on open B-book positions (last snapshot)"
    )
    computed_through: datetime | None


class SlippageRow(BaseModel):
    key: str
    deals: int
    mean_points: Decimal
    worst_points: Decimal
    best_points: Decimal
    worse: int
    better: int
    exact: int


class SlippagePatterns(BaseModel):
    """Slippage against the order's requested price by symbol, LP gateway ((B-book) for kept
    deals) and UTC hour; and the LP's fill against the raw quote by gateway."""

    server: str
    since: datetime
    until: datetime
    by_symbol: list[SlippageRow]
    by_gateway: list[SlippageRow]
    by_hour: list[SlippageRow]
    lp_by_gateway: list[SlippageRow]
    lp_by_symbol: list[SlippageRow]
    lp_by_hour: list[SlippageRow]


class MirrorRow(BaseModel):
    group: str
    symbol: str
    deals: int
    mirrored_markup_points: int
    observed_min_points: Decimal
    observed_max_points: Decimal
    mirrored_gateway: str
    observed_gateways: list[str]
    markup_differs: bool
    routing_differs: bool
    flagged: bool


class MirrorReport(BaseModel):
    server: str
    since: datetime
    until: datetime
    tolerance_points: Decimal
    rules: int = Field(description="rules mirrored for the server")
    rows: list[MirrorRow]
