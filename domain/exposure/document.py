"""The what-if document: the reporting currency, symbols (`symbol/get` fields), quotes
(`tick/last` fields), accounts (`user/get` Login, Group, Leverage, Country; `user/account/get`
Equity; the group's Currency and MarginMode; BrokerFlow's book), open positions (`position/get`)
and pending orders (`order/get`). MT5 records may carry every other Web API field (ignored);
the document's own keys are checked strictly, so a typo is refused, not dropped.

Shape and cross-references are checked here; `market()`, `accounts()`, `positions()` and
`orders()` hand the calculation its plain inputs."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.countries import is_iso_country, region_of
from domain.exposure.compute import AccountTerms, Book, OrderRow, PositionRow
from domain.exposure.market import ONE, ORDER_TYPES, ZERO, Market, Quote, SymbolTerms

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[Decimal, Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class _Mt5(BaseModel):
    """A Web API record: its other fields are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class SymbolRecord(_Mt5):
    symbol: str = Field(alias="Symbol", min_length=1)
    calc_mode: int = Field(default=0, alias="CalcMode")
    currency_base: str = Field(alias="CurrencyBase", min_length=1)
    currency_profit: Currency = Field(alias="CurrencyProfit")
    currency_margin: Currency | None = Field(default=None, alias="CurrencyMargin")
    contract_size: Positive = Field(alias="ContractSize")
    digits: int = Field(default=5, ge=0, le=10, alias="Digits")
    tick_size: NonNegative = Field(default=ZERO, alias="TickSize")
    tick_value: NonNegative = Field(default=ZERO, alias="TickValue")
    margin_initial: NonNegative = Field(default=ZERO, alias="MarginInitial")
    margin_hedged: NonNegative | None = Field(default=None, alias="MarginHedged")
    margin_rate_initial: tuple[NonNegative, ...] | NonNegative = Field(
        default=ONE, alias="MarginRateInitial"
    )
    margin_flags: int = Field(default=0, ge=0, alias="MarginFlags")

    @field_validator("margin_rate_initial")
    @classmethod
    def _eight_rates(cls, value: tuple[Decimal, ...] | Decimal) -> tuple[Decimal, ...] | Decimal:
        if isinstance(value, tuple) and len(value) != ORDER_TYPES:
            raise ValueError(
                "MarginRateInitial is one rate or a list of 8 (buy, sell, buy limit, sell limit,"
                " buy stop, sell stop, buy stop limit, sell stop limit)"
            )
        return value

    @model_validator(mode="after")
    def _margin_currency(self) -> SymbolRecord:
        base = self.currency_base
        is_currency = len(base) == 3 and base.isalpha() and base.isupper()
        if self.currency_margin is None and not is_currency:
            raise ValueError(
                f"symbol {self.symbol}: CurrencyBase {base!r} is not a currency, give"
                " CurrencyMargin"
            )
        return self

    def terms(self) -> SymbolTerms:
        rates = self.margin_rate_initial
        if not isinstance(rates, tuple):  # one rate: buys and sells; pending orders free
            rates = (rates, rates) + (ZERO,) * (ORDER_TYPES - 2)
        margin = self.currency_margin or self.currency_base
        return SymbolTerms(
            name=self.symbol,
            calc_mode=self.calc_mode,
            base=self.currency_base,
            profit=self.currency_profit,
            margin=margin,
            contract_size=self.contract_size,
            digits=self.digits,
            tick_size=self.tick_size,
            tick_value=self.tick_value,
            margin_initial=self.margin_initial,
            margin_hedged=self.margin_hedged,
            margin_rates=rates,
            margin_flags=self.margin_flags,
        )


class QuoteRecord(_Mt5):
    symbol: str = Field(alias="Symbol")
    bid: Positive = Field(alias="Bid")
    ask: Positive = Field(alias="Ask")
    last: Positive | None = Field(default=None, alias="Last")

    @field_validator("last", mode="before")
    @classmethod
    def _no_last(cls, value: Any) -> Any:
        try:
            empty = Decimal(str(value)) == 0  # MT5 prints 0 for "no Last"
        except ArithmeticError:
            return value  # not a number: the field's own check answers
        return None if empty else value

    @model_validator(mode="after")
    def _ordered(self) -> QuoteRecord:
        if self.ask < self.bid:
            raise ValueError(f"quote {self.symbol}: Ask below Bid")
        return self


class AccountRecord(_Mt5):
    login: int = Field(alias="Login", gt=0)
    group: str = Field(alias="Group", min_length=1)
    leverage: int = Field(alias="Leverage", gt=0)
    country: str = Field(alias="Country")
    equity: Finite = Field(alias="Equity")
    currency: Currency | None = Field(default=None, alias="Currency")
    margin_mode: int = Field(alias="MarginMode", ge=0, le=2)
    book: Book
    a_share: Annotated[Decimal, Field(gt=0, lt=1, allow_inf_nan=False)] | None = None

    @field_validator("country")
    @classmethod
    def _iso(cls, value: str) -> str:
        if not is_iso_country(value):
            raise ValueError(f"Country {value!r} is not an ISO 3166-1 alpha-2 code")
        return value

    @model_validator(mode="after")
    def _share_fits_book(self) -> AccountRecord:
        if (self.book is Book.HYBRID) != (self.a_share is not None):
            raise ValueError(f"login {self.login}: a_share is given for a hybrid book only")
        return self

    def terms(self, reporting: str) -> AccountTerms:
        share = {Book.A: ONE, Book.B: ZERO, Book.COVERAGE: ZERO}.get(self.book, self.a_share)
        assert share is not None
        return AccountTerms(
            login=self.login,
            group=self.group,
            country=self.country,
            region=region_of(self.country).value,
            currency=self.currency or reporting,
            leverage=self.leverage,
            equity=self.equity,
            hedging=self.margin_mode == 2,
            book=self.book,
            a_share=share,
        )


class PositionRecord(_Mt5):
    position: int = Field(alias="Position")
    login: int = Field(alias="Login")
    symbol: str = Field(alias="Symbol")
    action: int = Field(alias="Action", ge=0, le=1)
    volume: int = Field(alias="Volume", gt=0)
    price_open: Positive = Field(alias="PriceOpen")

    def row(self) -> PositionRow:
        return PositionRow(self.login, self.symbol, self.action, self.volume, self.price_open)


class OrderRecord(_Mt5):
    order: int = Field(alias="Order")
    login: int = Field(alias="Login")
    symbol: str = Field(alias="Symbol")
    type: int = Field(alias="Type", ge=0, le=8)
    volume_current: int = Field(alias="VolumeCurrent", ge=0)
    price_order: NonNegative = Field(default=ZERO, alias="PriceOrder")

    @model_validator(mode="after")
    def _priced(self) -> OrderRecord:
        if 2 <= self.type <= 7 and self.price_order <= 0:
            raise ValueError(f"order {self.order}: a pending order needs a PriceOrder above 0")
        return self

    def row(self) -> OrderRow:
        return OrderRow(self.login, self.symbol, self.type, self.volume_current, self.price_order)


class ExposureDocument(_Strict):
    currency: Currency
    symbols: tuple[SymbolRecord, ...]
    quotes: tuple[QuoteRecord, ...]
    accounts: tuple[AccountRecord, ...]
    positions: tuple[PositionRecord, ...] = ()
    orders: tuple[OrderRecord, ...] = ()

    @model_validator(mode="after")
    def _references_resolve(self) -> ExposureDocument:
        _unique("symbol", [s.symbol for s in self.symbols])
        _unique("quote", [q.symbol for q in self.quotes])
        _unique("login", [a.login for a in self.accounts])
        _unique("position", [p.position for p in self.positions])
        _unique("order", [o.order for o in self.orders])
        symbols = {s.symbol for s in self.symbols}
        logins = {a.login for a in self.accounts}
        refs = [(f"position {p.position}", p.login, p.symbol) for p in self.positions]
        refs += [(f"order {o.order}", o.login, o.symbol) for o in self.orders]
        for what, login, symbol in refs:
            if symbol not in symbols:
                raise ValueError(f"{what}: symbol {symbol!r} is not in symbols")
            if login not in logins:
                raise ValueError(f"{what}: login {login} is not in accounts")
        return self

    def market(self) -> Market:
        quotes = {q.symbol: Quote(q.bid, q.ask, q.last) for q in self.quotes}
        return Market(self.currency, [s.terms() for s in self.symbols], quotes)

    def account_terms(self) -> dict[int, AccountTerms]:
        return {a.login: a.terms(self.currency) for a in self.accounts}

    def position_rows(self) -> list[PositionRow]:
        return [p.row() for p in self.positions]

    def order_rows(self) -> list[OrderRow]:
        return [o.row() for o in self.orders]


def _unique(what: str, keys: list[Any]) -> None:
    seen: set[Any] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"{what} {key} appears twice")
        seen.add(key)
