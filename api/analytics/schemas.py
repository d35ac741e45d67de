"""The reports' JSON shapes (docs/reporting.md). Amounts are decimal strings in `currency`;
a row never adds currencies together."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, Field


class RevenueRow(BaseModel):
    """The broker's revenue from one slice (a symbol, a group, a day or a book) in one
    currency. `markup`: the dealer plugin's markup captured on the slice's deals (client price
    against the raw MarketBid/MarketAsk each deal carries, docs/revenue.md), shown beside the
    revenue and not added to it (on the B-book it is inside the clients' P&L already); null
    when no deal of the slice has its markup computed."""

    key: str
    currency: str
    deals: int | None = None
    accounts: int | None = None
    volume_lots: Decimal
    commission_income: Decimal
    swap_income: Decimal
    fee_income: Decimal
    b_book_pnl: Decimal
    markup: Decimal | None = Field(
        default=None, description="dealer markup captured (not added to revenue); null: unknown"
    )
    revenue: Decimal


class RevenueReport(BaseModel):
    first: date
    last: date
    dimension: str = Field(description="symbol, symbol_group, day or book")
    rows: list[RevenueRow]
    totals: list[RevenueRow] = Field(description="per currency, `key` is `total`")


class ClientValueRow(BaseModel):
    client_id: UUID
    country: str
    region: str
    signed_up: date
    tenure_days: int
    currency: str
    net_deposits: Decimal
    revenue: Decimal
    volume_lots: Decimal


class CohortRow(BaseModel):
    cohort: str = Field(description="sign-up month, YYYY-MM")
    country: str
    currency: str
    clients: int
    net_deposits: Decimal
    revenue: Decimal
    revenue_per_client: Decimal


class CohortCurve(BaseModel):
    """Cumulative revenue per client of a sign-up month's cohort, month by month of trading
    from its sign-up month (index 0)."""

    cohort: str
    currency: str
    clients: int
    cumulative_per_client: list[Decimal]


class LifetimeValueReport(BaseModel):
    first: date
    last: date
    clients: list[ClientValueRow]
    cohorts: list[CohortRow]
    curves: list[CohortCurve]


class RegionRow(BaseModel):
    country: str
    region: str
    currency: str
    accounts: int
    volume_lots: Decimal
    revenue: Decimal
    net_deposits: Decimal


class RegionReport(BaseModel):
    first: date
    last: date
    rows: list[RegionRow]


class IbContributionRow(BaseModel):
    ib_id: UUID
    name: str
    parent_id: UUID | None
    currency: str
    accounts: int
    volume_lots: Decimal
    revenue: Decimal
    commissions: Decimal
    net: Decimal = Field(description="revenue - commissions")


class IbContributionReport(BaseModel):
    first: date
    last: date
    rows: list[IbContributionRow]


class ClientMoneyRow(BaseModel):
    currency: str
    wallets: Decimal
    holds: Decimal
    mt5_ledger: Decimal = Field(description="the ledger's mt5: mirror accounts")
    ledger_client_money: Decimal = Field(description="wallets + holds + mt5_ledger")
    mt5_balances: Decimal = Field(description="MT5 balances of client accounts at the day's end")
    mt5_accounts: int
    mt5_difference: Decimal = Field(description="mt5_balances - mt5_ledger")
    client_money_requirement: Decimal = Field(description="wallets + holds + mt5_balances")


class ClientMoneyStatement(BaseModel):
    day: date
    rows: list[ClientMoneyRow]
