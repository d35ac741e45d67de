"""The risk desk's request and response shapes: account books, alert thresholds, alerts and the
live exposure (the dashboard's JSON)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import Path
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from api.schemas import Note
from db.models import AccountBook, RiskAlert, RiskThreshold
from domain.exposure.alerts import Metric, Scope

SERVER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ServerName = Annotated[str, Path(pattern=SERVER_PATTERN, description="an MT5 server's name")]
Login = Annotated[int, Path(ge=1, le=9_223_372_036_854_775_807, description="an MT5 login")]
VALUE_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,6})?$"
SHARE_PATTERN = r"^0\.[0-9]{1,6}$"


def _decimal(pattern: str, example: str) -> BeforeValidator:
    def parse(value: object) -> Decimal:
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise ValueError(f'give it as a decimal string such as "{example}"')
        return Decimal(value)

    return BeforeValidator(parse)


ThresholdValue = Annotated[
    Decimal,
    _decimal(VALUE_PATTERN, "250000.00"),
    WithJsonSchema({"type": "string", "pattern": VALUE_PATTERN, "examples": ["250000.00"]}),
]
Share = Annotated[
    Decimal,
    _decimal(SHARE_PATTERN, "0.25"),
    WithJsonSchema({"type": "string", "pattern": SHARE_PATTERN, "examples": ["0.25"]}),
]
BookName = Literal["A", "B", "hybrid", "coverage"]


class BookSet(BaseModel):
    """`A` routed, `B` kept, `hybrid` with `a_share` (0 < share < 1) routed and the rest kept,
    `coverage` the broker's own account at a liquidity provider."""

    model_config = ConfigDict(extra="forbid")

    book: BookName
    a_share: Share | None = None
    reason: Note | None = None


class BookView(BaseModel):
    server: str
    login: int
    book: BookName
    a_share: str | None
    set_by: str
    updated_at: datetime

    @classmethod
    def of(cls, row: AccountBook) -> BookView:
        return cls(
            server=row.server,
            login=row.login,
            book=row.book,
            a_share=None if row.a_share is None else format(row.a_share.normalize(), "f"),
            set_by=row.set_by,
            updated_at=row.updated_at,
        )


class ThresholdCreate(BaseModel):
    """Raise an alert when `metric` of the `scope` bucket `key` (symbol, MT5 group, region
    `eu`/`uk`/`intl`, book `A`/`B`, an account's MT5 login (margin utilisation only); `*` for
    `total`) goes above `raise_above`, clear it when it
    falls below `clear_below`. Notional figures are in the reporting currency; concentration
    and margin utilisation are ratios (0.25 = 25 %); `change` compares with the point
    `window_seconds` earlier. `server` unset: every server."""

    model_config = ConfigDict(extra="forbid")

    server: Annotated[str, StringConstraints(pattern=SERVER_PATTERN)] | None = None
    scope: Scope
    key: Annotated[
        str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
    ]
    metric: Metric
    raise_above: ThresholdValue
    clear_below: ThresholdValue
    window_seconds: Annotated[int, Field(ge=1, le=86_400)] | None = None


class ThresholdView(BaseModel):
    id: uuid.UUID
    server: str | None
    scope: str
    key: str
    metric: str
    raise_above: str
    clear_below: str
    window_seconds: int | None
    active: bool
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, row: RiskThreshold) -> ThresholdView:
        return cls(
            id=row.id,
            server=row.server,
            scope=row.scope,
            key=row.key,
            metric=row.metric,
            raise_above=format(row.raise_above, "f"),
            clear_below=format(row.clear_below, "f"),
            window_seconds=row.window_seconds,
            active=row.active,
            created_by=row.created_by,
            created_at=row.created_at,
        )


class AlertNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note | None = None


class AlertView(BaseModel):
    id: uuid.UUID
    threshold_id: uuid.UUID
    server: str
    scope: str
    key: str
    metric: str
    status: Literal["open", "acknowledged", "resolved"]
    cleared: bool
    value: str
    last_value: str
    peak_value: str
    raise_above: str
    raised_at: datetime
    raised_count: int
    cleared_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    note: str | None

    @classmethod
    def of(cls, row: RiskAlert) -> AlertView:
        return cls(
            id=row.id,
            threshold_id=row.threshold_id,
            server=row.server,
            scope=row.scope,
            key=row.key,
            metric=row.metric,
            status=row.status,
            cleared=row.cleared_at is not None,
            value=format(row.value, "f"),
            last_value=format(row.last_value, "f"),
            peak_value=format(row.peak_value, "f"),
            raise_above=format(row.raise_above, "f"),
            raised_at=row.raised_at,
            raised_count=row.raised_count,
            cleared_at=row.cleared_at,
            acknowledged_by=row.acknowledged_by,
            acknowledged_at=row.acknowledged_at,
            resolved_by=row.resolved_by,
            resolved_at=row.resolved_at,
            note=row.note,
        )


class SymbolExposure(BaseModel):
    symbol: str
    long_notional: str
    short_notional: str
    net_notional: str
    net_lots: str


class MarginCallView(BaseModel):
    """An account near a margin call, at one, or at a stop out in the newest point (its trade
    state from MT5, money in its deposit currency; `level` in %, null when Margin is 0;
    `margin_call`, `stop_out` and `near_limit` are percent, or money when `so_mode` is money)."""

    login: int
    group: str
    currency: str
    equity: str
    margin: str
    level: str | None
    margin_call: str
    stop_out: str
    near_limit: str
    so_mode: Literal["percent", "money"]
    state: Literal["near_margin_call", "margin_call", "stop_out"]


class SeriesPoint(BaseModel):
    at: datetime
    net_notional: str
    gross_notional: str
    house_net_notional: str


class LiveExposure(BaseModel):
    """A server's newest point and its series over the last `minutes` (what the dashboard
    polls). No point yet: `at` and the figures are null, the lists empty."""

    server: str | None
    servers: list[str]
    currency: str | None
    at: datetime | None
    net_notional: str | None
    gross_notional: str | None
    pending_notional: str | None
    house_net_notional: str | None
    margin_utilisation: str | None
    by_symbol: list[SymbolExposure]
    series: list[SeriesPoint]
    alerts: list[AlertView]
    # The accounts at risk in the newest point, the most severe first (empty when none, or
    # when the point was made without MT5's trade states).
    margin_calls: list[MarginCallView]


class ConsoleAlertForm(BaseModel):
    """The dashboard's acknowledge / resolve form."""

    note: str = Field(default="", max_length=500)
    csrf: str = Field(default="", max_length=128)
