"""The dealer-revenue what-if document (`python -m revenue.deal FILE`, docs/revenue.md): deals
(`deal/get` fields), the history orders they came from (`history/get`: Order, Type,
PriceOrder), the accounts (`user/get` Login, Group; the group's Currency), open positions
(`position/get`: Position, Login, Symbol, Profit) and the mirrored dealer-plugin rules. MT5
records may carry every other Web API field (ignored); the document's own keys are checked
strictly, so a typo is refused, not dropped.

`answer()` computes with `domain.revenue`, the code the live view runs, and shapes the answer:
per deal, totals per currency, the mirror check, the house's floating B-book P&L and slippage
patterns per symbol, gateway and hour (the hour of the deal's `TimeMsc` as given: server clock).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.revenue import (
    UNKNOWN_CURRENCY,
    ZERO,
    Amount,
    DealerRule,
    DealFacts,
    DealRevenue,
    Observed,
    check_mirror,
    deal_revenue,
    floating_b_book,
    slippage_stats,
)

NonNegative = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[Decimal, Field(allow_inf_nan=False)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Mt5(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class DealRecord(_Mt5):
    deal: int = Field(alias="Deal", gt=0)
    login: int = Field(alias="Login", gt=0)
    order: int = Field(default=0, alias="Order", ge=0)
    action: int = Field(alias="Action", ge=0)
    entry: int = Field(default=0, alias="Entry", ge=0, le=3)
    symbol: str = Field(default="", alias="Symbol")
    digits: int = Field(default=5, alias="Digits", ge=0, le=10)
    contract_size: NonNegative = Field(default=ZERO, alias="ContractSize")
    price: NonNegative = Field(default=ZERO, alias="Price")
    volume: int = Field(default=0, alias="Volume", ge=0)
    volume_ext: int = Field(default=0, alias="VolumeExt", ge=0)
    market_bid: NonNegative = Field(default=ZERO, alias="MarketBid")
    market_ask: NonNegative = Field(default=ZERO, alias="MarketAsk")
    gateway: str = Field(default="", alias="Gateway")
    price_gateway: NonNegative = Field(default=ZERO, alias="PriceGateway")
    profit: Finite = Field(default=ZERO, alias="Profit")
    commission: Finite = Field(default=ZERO, alias="Commission")
    fee: Finite = Field(default=ZERO, alias="Fee")
    rate_profit: Finite = Field(default=Decimal(1), alias="RateProfit")
    position_id: int = Field(default=0, alias="PositionID", ge=0)
    time_msc: int = Field(default=0, alias="TimeMsc", ge=0)


class OrderRecord(_Mt5):
    order: int = Field(alias="Order", gt=0)
    type: int = Field(default=0, alias="Type", ge=0)
    price_order: NonNegative = Field(default=ZERO, alias="PriceOrder")


class AccountRecord(_Mt5):
    login: int = Field(alias="Login", gt=0)
    group: str = Field(default="", alias="Group")
    currency: Currency = Field(default=UNKNOWN_CURRENCY, alias="Currency")


class PositionRecord(_Mt5):
    position: int = Field(alias="Position", gt=0)
    login: int = Field(alias="Login", gt=0)
    symbol: str = Field(default="", alias="Symbol")
    profit: Finite = Field(default=ZERO, alias="Profit")


class RuleRecord(_Strict):
    group_mask: str = Field(min_length=1)
    symbol_mask: str = Field(default="*", min_length=1)
    markup_points: int = Field(default=0, ge=0, le=1_000_000)
    a_book: bool = False
    gateway: str = ""  # A-book: the LP gateway its deals carry ("": any)

    def rule(self) -> DealerRule:
        return DealerRule(
            self.group_mask, self.symbol_mask, self.markup_points, self.a_book, self.gateway
        )


class RevenueDocument(_Strict):
    deals: list[DealRecord] = Field(min_length=1)
    orders: list[OrderRecord] = Field(default_factory=list)
    accounts: list[AccountRecord] = Field(default_factory=list)
    positions: list[PositionRecord] = Field(default_factory=list)
    dealer_rules: list[RuleRecord] = Field(default_factory=list)
    tolerance_points: NonNegative = ZERO

    @model_validator(mode="after")
    def _unique(self) -> RevenueDocument:
        for name, keys in (
            ("deal", [d.deal for d in self.deals]),
            ("order", [o.order for o in self.orders]),
            ("account", [a.login for a in self.accounts]),
            ("position", [p.position for p in self.positions]),
        ):
            if len(keys) != len(set(keys)):
                raise ValueError(f"a {name} is given twice")
        return self


def _plain(value: Decimal | None) -> str | None:
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def _amount(value: Amount | None) -> str | None:
    return None if value is None else _plain(value.amount)


def _deal_view(
    record: DealRecord, group: str, figures: DealRevenue, currency: str
) -> dict[str, Any]:
    return {
        "deal": record.deal,
        "login": record.login,
        "group": group,
        "symbol": record.symbol,
        "currency": currency,
        "book": "A" if figures.a_book else "B",
        "gateway": record.gateway,
        "lots": _plain(figures.lots),
        "spread_points": _plain(figures.spread_points),
        "markup_points": _plain(figures.markup_points),
        "slippage_points": _plain(figures.slippage_points),
        "gateway_slippage_points": _plain(figures.gateway_slippage_points),
        "spread_captured": _amount(figures.spread_captured),
        "markup": _amount(figures.markup),
        "commission_revenue": _amount(figures.commission_revenue),
        "fee_revenue": _amount(figures.fee_revenue),
        "b_book_pnl": _amount(figures.b_book_pnl),
        "a_book_cost": _amount(figures.a_book_cost),
    }


_TOTALLED = (
    "spread_captured",
    "markup",
    "commission_revenue",
    "fee_revenue",
    "b_book_pnl",
    "a_book_cost",
)


def _hour(time_msc: int) -> int:
    return datetime.fromtimestamp(time_msc / 1000, UTC).hour


def answer(doc: RevenueDocument) -> dict[str, Any]:
    accounts = {a.login: a for a in doc.accounts}
    orders = {o.order: o for o in doc.orders}
    rules = [r.rule() for r in doc.dealer_rules]
    views: list[dict[str, Any]] = []
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    observed: list[Observed] = []
    a_book_positions: set[tuple[int, int]] = set()
    slippage: dict[str, dict[str, list[Decimal]]] = {
        "symbol": defaultdict(list),
        "gateway": defaultdict(list),
        "hour": defaultdict(list),
    }
    gateway_slippage: dict[str, list[Decimal]] = defaultdict(list)
    for record in doc.deals:
        if record.action not in (0, 1):
            continue  # balance, credit, commission deals: no trade
        account = accounts.get(record.login)
        currency = account.currency if account else UNKNOWN_CURRENCY
        group = account.group if account else ""
        order = orders.get(record.order)
        facts = DealFacts(
            deal=record.deal,
            login=record.login,
            symbol=record.symbol,
            action=record.action,
            entry=record.entry,
            digits=record.digits,
            contract_size=record.contract_size,
            volume=record.volume,
            volume_ext=record.volume_ext,
            price=record.price,
            currency=currency,
            market_bid=record.market_bid,
            market_ask=record.market_ask,
            gateway=record.gateway,
            price_gateway=record.price_gateway,
            price_requested=order.price_order if order else None,
            profit=record.profit,
            commission=record.commission,
            fee=record.fee,
            rate_profit=record.rate_profit,
            order_type=order.type if order else None,
        )
        figures = deal_revenue(facts)
        views.append(_deal_view(record, group, figures, currency))
        for name in _TOTALLED:
            value = getattr(figures, name)
            if value is not None:
                totals[currency][name] += value.amount
        if figures.a_book:
            a_book_positions.add((record.login, record.position_id))
        if figures.comparable and figures.markup_points is not None and group:
            markup_points = figures.markup_points
            observed.append(
                Observed(group, record.symbol, record.gateway, markup_points, markup_points)
            )
        if figures.slippage_points is not None:
            for key, bucket in (
                ("symbol", record.symbol),
                ("gateway", record.gateway or "(B-book)"),
                ("hour", f"{_hour(record.time_msc):02d}"),
            ):
                slippage[key][bucket].append(figures.slippage_points)
        if figures.gateway_slippage_points is not None:
            gateway_slippage[record.gateway].append(figures.gateway_slippage_points)
    floating = floating_b_book(
        (
            p.profit,
            accounts[p.login].currency if p.login in accounts else UNKNOWN_CURRENCY,
        )
        for p in doc.positions
        if (p.login, p.position) not in a_book_positions
    )
    return {
        "deals": views,
        "totals": [
            {"currency": c, **{n: _plain(values[n]) for n in _TOTALLED}}
            for c, values in sorted(totals.items())
        ],
        "floating_b_book_pnl": [
            {"currency": c, "amount": _plain(v)} for c, v in sorted(floating.items())
        ],
        "mirror": [
            {
                "group": m.group,
                "symbol": m.symbol,
                "deals": m.deals,
                "mirrored_markup_points": m.mirrored_markup_points,
                "observed_min_points": _plain(m.observed_min_points),
                "observed_max_points": _plain(m.observed_max_points),
                "mirrored_gateway": m.mirrored_gateway,
                "observed_gateways": list(m.observed_gateways),
                "flagged": m.flagged,
            }
            for m in check_mirror(rules, observed, doc.tolerance_points)
        ],
        "slippage": {
            key: [_stats_view(bucket, values) for bucket, values in sorted(buckets.items())]
            for key, buckets in slippage.items()
        }
        | {
            "lp_gateway": [
                _stats_view(bucket, values) for bucket, values in sorted(gateway_slippage.items())
            ]
        },
    }


def _stats_view(bucket: str, values: list[Decimal]) -> dict[str, Any]:
    stats = slippage_stats(values)
    assert stats is not None  # a bucket holds at least one value
    return {
        "key": bucket,
        "deals": stats.deals,
        "mean_points": _plain(stats.mean_points),
        "worst_points": _plain(stats.worst_points),
        "best_points": _plain(stats.best_points),
        "worse": stats.worse,
        "better": stats.better,
        "exact": stats.exact,
    }
