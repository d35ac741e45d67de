"""The calculation: open positions and pending orders (plain rows, no model per row) into
exposure buckets, each account's margin and the house's net exposure per symbol.

It runs in three passes so that per-row work is integer additions and one Decimal product:

1. positions into cells per (login, symbol): volume and volume x open price per side. A cell
   is a tuple, replaced on each row, not a list: a list per cell (78,000 at 100,000 positions)
   stays tracked by the garbage collector, is promoted to its oldest generation and sets off a
   full collection, a walk of the whole process's heap (about 0.2 s in a process that imports
   the app, as the worker does), in most runs; a tuple of numbers is untracked by the first
   collection it survives;
2. each cell's margin (the account's leverage, netting or hedged), then the cell into an
   aggregate per (symbol, account profile), profile = (group, country, region, book, A share);
3. pending orders into the same aggregates (and into margin where the order type is charged).

Exposure is linear in volume, so each aggregate becomes lots and notional with one product per
figure (the symbol's notional per volume unit, made once by `Market`), and the few aggregates
are added into the buckets. Nothing is rounded here; `report` rounds what it prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from domain.errors import InvalidInput
from domain.exposure.market import LOT, ONE, TWO, ZERO, Market, Spec

BUY, SELL = 0, 1
PENDING_TYPES = range(2, 8)  # buy/sell limit, stop, stop limit; even types buy, odd sell


class Book(StrEnum):
    A = "A"  # routed to a liquidity provider
    B = "B"  # kept: the broker is the counterparty
    HYBRID = "hybrid"  # a_share routed, the rest kept
    COVERAGE = "coverage"  # the broker's own position at a liquidity provider (a hedge)


@dataclass(frozen=True, slots=True)
class AccountTerms:
    login: int
    group: str
    country: str
    region: str
    currency: str  # deposit currency: equity and margin are in it
    leverage: int
    equity: Decimal
    hedging: bool  # MarginMode 2 (retail hedging); 0 and 1 are netting
    book: Book
    a_share: Decimal  # part of the flow routed out: A 1, B 0, hybrid its share


class PositionRow(NamedTuple):
    """`position/get`: Login, Symbol, Action (0 buy, 1 sell), Volume (1/10000 lot), PriceOpen."""

    login: int
    symbol: str
    action: int
    volume: int
    price_open: Decimal


class OrderRow(NamedTuple):
    """`order/get`: Login, Symbol, Type, VolumeCurrent (1/10000 lot), PriceOrder."""

    login: int
    symbol: str
    type: int
    volume: int
    price_order: Decimal


class Figures(NamedTuple):
    """One bucket. Lots are client lots; notional and margin are in the reporting currency."""

    long_lots: Decimal
    short_lots: Decimal
    long_notional: Decimal
    short_notional: Decimal
    pending_buy_lots: Decimal
    pending_sell_lots: Decimal
    pending_buy_notional: Decimal
    pending_sell_notional: Decimal
    margin: Decimal

    @property
    def net_lots(self) -> Decimal:
        return self.long_lots - self.short_lots

    @property
    def gross_lots(self) -> Decimal:
        return self.long_lots + self.short_lots

    @property
    def net_notional(self) -> Decimal:
        return self.long_notional - self.short_notional

    @property
    def gross_notional(self) -> Decimal:
        return self.long_notional + self.short_notional


class House(NamedTuple):
    """One symbol from the broker's side. Client figures are net (long - short); `house_*` is
    what the broker holds: -(B-book client net) + coverage net (the A-book share is passed on to
    the liquidity provider and leaves no position with the broker)."""

    client_net_lots: Decimal
    a_book_net_lots: Decimal
    b_book_net_lots: Decimal
    coverage_net_lots: Decimal
    client_net_notional: Decimal
    a_book_net_notional: Decimal
    b_book_net_notional: Decimal
    coverage_net_notional: Decimal

    @property
    def house_net_lots(self) -> Decimal:
        return self.coverage_net_lots - self.b_book_net_lots

    @property
    def house_net_notional(self) -> Decimal:
        return self.coverage_net_notional - self.b_book_net_notional


@dataclass(frozen=True, slots=True)
class AccountMargin:
    account: AccountTerms
    margin_positions: Decimal  # in the account's currency
    margin_pending: Decimal
    margin_reporting: Decimal  # margin in the reporting currency (at the mid)
    equity_reporting: Decimal

    @property
    def margin(self) -> Decimal:
        return self.margin_positions + self.margin_pending

    @property
    def utilisation(self) -> Decimal | None:
        """Margin / equity; None when equity is not positive (the ratio means nothing)."""
        equity = self.account.equity
        return self.margin / equity if equity > 0 else None


@dataclass(frozen=True, slots=True)
class GroupMargin:
    margin: Decimal  # reporting currency
    equity: Decimal
    accounts: int

    @property
    def utilisation(self) -> Decimal | None:
        return self.margin / self.equity if self.equity > 0 else None


@dataclass(frozen=True, slots=True)
class Exposure:
    currency: str
    total: Figures
    by_symbol: dict[str, Figures]
    by_group: dict[str, Figures]
    by_country: dict[str, Figures]
    by_region: dict[str, Figures]
    by_book: dict[str, Figures]  # "A" and "B"; a hybrid account's figures split by its share
    house: dict[str, House]
    accounts: list[AccountMargin]
    groups: dict[str, GroupMargin]


_FIELDS = len(Figures._fields)

# A (login, symbol) cell: buy volume, sell volume, buy volume x open price, sell volume x open
# price (the products only for a symbol whose margin reads the open price, `Market.weighted`).
Cell = tuple[int, int, Decimal, Decimal]


def _empty() -> list[Decimal]:
    return [ZERO] * _FIELDS


def _add(into: list[Decimal], values: list[Decimal]) -> None:
    for i, value in enumerate(values):
        into[i] += value


def _side(spec: Spec, side: int, volume: int, weighted: Decimal, leverage: int) -> Decimal:
    """Margin of one side of a cell, `weighted` = its volume x open price summed: lots x average
    open price = weighted / LOT, so no division by the volume is needed."""
    amount = spec.side_factors[side] * (weighted if spec.weighted else volume)
    return amount / leverage if spec.leveraged else amount


def cell_margin(spec: Spec, cell: Cell, account: AccountTerms, symbol: str) -> Decimal:
    """Margin of one account's positions in one symbol, in the symbol's margin currency
    (reference 2.4). Positions are priced at their volume-weighted average open price per side
    (exchange stocks at Last). Hedging, both sides open: the uncovered volume at the larger
    leg's average price and rate, plus the hedged volume x MarginHedged / ContractSize at the
    mean of both legs' average prices and the higher of the two rates; with
    MARGIN_FLAGS_HEDGE_LARGE_LEG only the larger leg's margin."""
    buy, sell, buy_w, sell_w = cell
    leverage, rates = account.leverage, spec.rates
    if not (buy and sell):
        if buy:
            return _side(spec, BUY, buy, buy_w, leverage)
        return _side(spec, SELL, sell, sell_w, leverage) if sell else ZERO
    if not account.hedging:
        raise InvalidInput(
            f"login {account.login} nets its positions (MarginMode 0/1) but has both a buy and a"
            f" sell position in {symbol}"
        )
    buy_margin = _side(spec, BUY, buy, buy_w, leverage)
    sell_margin = _side(spec, SELL, sell, sell_w, leverage)
    if spec.large_leg:
        return max(buy_margin, sell_margin)
    hedged = min(buy, sell)
    if buy >= sell:
        uncovered = buy_margin * (buy - hedged) / buy
    else:
        uncovered = sell_margin * (sell - hedged) / sell
    lots = Decimal(hedged) * spec.hedged_ratio / LOT
    price = (buy_w / buy + sell_w / sell) / TWO
    rate = max(rates[BUY], rates[SELL])
    return uncovered + spec.margin(lots, price, leverage, rate)


class _Calculation:
    def __init__(self, market: Market, accounts: Mapping[int, AccountTerms]) -> None:
        self.market = market
        self.accounts = accounts
        self.specs: dict[str, Spec] = {}
        self.charge: dict[tuple[str, str], Decimal] = {}
        self.to_reporting: dict[str, Decimal] = {}
        # Accounts alike for every bucket share a profile: (group, country, region, book, share).
        self.profiles: dict[tuple[str, str, str, Book, Decimal], int] = {}
        self.profile_of: dict[int, int] = {}
        for login, account in accounts.items():
            key = (account.group, account.country, account.region, account.book, account.a_share)
            self.profile_of[login] = self.profiles.setdefault(key, len(self.profiles))
        # (symbol, profile) -> [long, short, pending buy, pending sell] volumes (ints), then
        # [pending buy, pending sell] volume x price and margin in the reporting currency.
        self.aggregates: dict[tuple[str, int], list[Any]] = {}
        self.margin_positions: dict[int, Decimal] = {}
        self.margin_pending: dict[int, Decimal] = {}

    def spec(self, symbol: str) -> Spec:
        found = self.specs.get(symbol)
        if found is None:
            found = self.specs[symbol] = self.market.spec(symbol)
        return found

    def account(self, login: int) -> AccountTerms:
        found = self.accounts.get(login)
        if found is None:
            raise InvalidInput(f"login {login} is not in accounts")
        return found

    def rates_for(self, spec: Spec, account: AccountTerms) -> tuple[Decimal, Decimal]:
        """(margin currency -> deposit currency at the charge side, deposit -> reporting at
        the mid)."""
        key = (spec.terms.margin, account.currency)
        charge = self.charge.get(key)
        if charge is None:
            charge = self.charge[key] = self.market.rates.charge(*key)
        mid = self.to_reporting.get(account.currency)
        if mid is None:
            mid = self.to_reporting[account.currency] = self.market.rates.mid(
                account.currency, self.market.currency
            )
        return charge, mid

    def positions(self, rows: Iterable[PositionRow]) -> None:
        # Sums start at ZERO (ZERO + the first product), as an in-place sum would: the same
        # Decimals, exponents included.
        cells: dict[tuple[int, str], Cell] = {}
        get = cells.get
        weighted = self.market.weighted
        for login, symbol, action, volume, price in rows:
            at = (login, symbol)
            cell = get(at)
            if action == BUY:
                if cell is None:
                    product = ZERO + volume * price if symbol in weighted else ZERO
                    cells[at] = (volume, 0, product, ZERO)
                else:
                    buy, sell, buy_w, sell_w = cell
                    if symbol in weighted:
                        buy_w += volume * price
                    cells[at] = (buy + volume, sell, buy_w, sell_w)
            elif action == SELL:
                if cell is None:
                    product = ZERO + volume * price if symbol in weighted else ZERO
                    cells[at] = (0, volume, ZERO, product)
                else:
                    buy, sell, buy_w, sell_w = cell
                    if symbol in weighted:
                        sell_w += volume * price
                    cells[at] = (buy, sell + volume, buy_w, sell_w)
            else:
                raise InvalidInput(f"login {login} {symbol}: position Action {action} is not 0/1")
        margins = self.margin_positions
        aggregates = self.aggregates
        profile_of = self.profile_of
        accounts = self.accounts
        # (deposit currency, symbol) -> (spec, margin to deposit, margin to reporting)
        known: dict[tuple[str, str], tuple[Spec, Decimal, Decimal]] = {}
        for (login, symbol), cell in cells.items():
            account = accounts.get(login) or self.account(login)
            consts = known.get((account.currency, symbol))
            if consts is None:
                spec = self.spec(symbol)
                charge, mid = self.rates_for(spec, account)
                consts = known[(account.currency, symbol)] = (spec, charge, charge * mid)
            spec, charge, reporting = consts
            buy, sell = cell[0], cell[1]
            if buy and sell:
                margin = cell_margin(spec, cell, account, symbol)
            else:  # one side: cell_margin's first case, inlined (most cells)
                side = BUY if buy else SELL
                margin = spec.side_factors[side] * (cell[2 + side] if spec.weighted else buy + sell)
                if spec.leveraged:
                    margin /= account.leverage
            margins[login] = margins.get(login, ZERO) + margin * charge
            key = (symbol, profile_of[login])
            aggregate = aggregates.get(key)
            if aggregate is None:
                aggregate = aggregates[key] = [0, 0, 0, 0, ZERO, ZERO, ZERO]
            aggregate[0] += buy
            aggregate[1] += sell
            aggregate[6] += margin * reporting

    def orders(self, rows: Iterable[OrderRow]) -> None:
        margins = self.margin_pending
        aggregates = self.aggregates
        for login, symbol, kind, volume, price in rows:
            if kind not in PENDING_TYPES:
                continue
            account = self.account(login)
            key = (symbol, self.profile_of[login])
            aggregate = aggregates.get(key)
            if aggregate is None:
                aggregate = aggregates[key] = [0, 0, 0, 0, ZERO, ZERO, ZERO]
            side = kind % 2  # 0 buy, 1 sell
            aggregate[2 + side] += volume
            aggregate[4 + side] += volume * price
            spec = self.specs.get(symbol) or self.spec(symbol)
            rate = spec.rates[kind]
            if rate:
                charge, mid = self.rates_for(spec, account)
                lots = Decimal(volume) / LOT
                margin = spec.margin(lots, price, account.leverage, rate) * charge
                margins[login] = margins.get(login, ZERO) + margin
                aggregate[6] += margin * mid

    def exposure(self) -> Exposure:
        """Aggregates into (bucket key, symbol) sums (integer volumes), each made into figures
        with the symbol's constants once, then added up per bucket."""
        profiles = list(self.profiles)
        dims: dict[str, dict[tuple[Any, str], list[Any]]] = {
            name: {} for name in ("symbol", "group", "country", "region", "share", "coverage")
        }
        for (symbol, profile), aggregate in self.aggregates.items():
            group, country, region, book, a_share = profiles[profile]
            if book is Book.COVERAGE:
                keys: tuple[tuple[str, Any], ...] = (("coverage", symbol),)
            else:
                keys = (
                    ("symbol", symbol),
                    ("group", group),
                    ("country", country),
                    ("region", region),
                    ("share", a_share),
                )
            for dim, key in keys:
                sums = dims[dim].get((key, symbol))
                if sums is None:
                    dims[dim][(key, symbol)] = list(aggregate)
                else:
                    for i, value in enumerate(aggregate):
                        sums[i] += value

        def figures(symbol: str, sums: list[Any]) -> list[Decimal]:
            spec = self.specs.get(symbol) or self.spec(symbol)
            per_volume, per_price = spec.notional_per_volume, spec.value_per_volume
            long_v, short_v, pbuy_v, psell_v, pbuy_w, psell_w, margin = sums
            return [
                Decimal(long_v).scaleb(-4),
                Decimal(short_v).scaleb(-4),
                long_v * per_volume,
                short_v * per_volume,
                Decimal(pbuy_v).scaleb(-4),
                Decimal(psell_v).scaleb(-4),
                pbuy_w * per_price,
                psell_w * per_price,
                margin,
            ]

        buckets: dict[str, dict[str, list[Decimal]]] = {
            name: {} for name in ("symbol", "group", "country", "region", "book")
        }
        total = _empty()
        house: dict[str, list[Decimal]] = {}
        for dim in ("symbol", "group", "country", "region"):
            for (key, symbol), sums in dims[dim].items():
                values = figures(symbol, sums)
                _add(buckets[dim].setdefault(key, _empty()), values)
                if dim == "symbol":
                    _add(total, values)
                    own = house.setdefault(symbol, [ZERO] * 8)
                    own[0] += values[0] - values[1]
                    own[4] += values[2] - values[3]
        for (share, symbol), sums in dims["share"].items():
            values = figures(symbol, sums)
            routed = values if share == ONE else [v * share for v in values]
            kept = [v - r for v, r in zip(values, routed, strict=True)]
            _add(buckets["book"].setdefault(Book.A.value, _empty()), routed)
            _add(buckets["book"].setdefault(Book.B.value, _empty()), kept)
            own = house.setdefault(symbol, [ZERO] * 8)
            own[1] += routed[0] - routed[1]
            own[2] += kept[0] - kept[1]
            own[5] += routed[2] - routed[3]
            own[6] += kept[2] - kept[3]
        for (_, symbol), sums in dims["coverage"].items():
            values = figures(symbol, sums)
            own = house.setdefault(symbol, [ZERO] * 8)
            own[3] += values[0] - values[1]
            own[7] += values[2] - values[3]
        accounts, groups = self.account_margins()

        def frozen(name: str) -> dict[str, Figures]:
            return {key: Figures(*values) for key, values in sorted(buckets[name].items())}

        return Exposure(
            currency=self.market.currency,
            total=Figures(*total),
            by_symbol=frozen("symbol"),
            by_group=frozen("group"),
            by_country=frozen("country"),
            by_region=frozen("region"),
            by_book=frozen("book"),
            house={symbol: House(*values) for symbol, values in sorted(house.items())},
            accounts=accounts,
            groups=groups,
        )

    def account_margins(self) -> tuple[list[AccountMargin], dict[str, GroupMargin]]:
        rates = self.market.rates
        accounts: list[AccountMargin] = []
        sums: dict[str, list[Decimal]] = {}
        for login in sorted(self.accounts):
            account = self.accounts[login]
            mid = self.to_reporting.get(account.currency)
            if mid is None:
                mid = self.to_reporting[account.currency] = rates.mid(
                    account.currency, self.market.currency
                )
            positions = self.margin_positions.get(login, ZERO)
            pending = self.margin_pending.get(login, ZERO)
            row = AccountMargin(
                account=account,
                margin_positions=positions,
                margin_pending=pending,
                margin_reporting=(positions + pending) * mid,
                equity_reporting=account.equity * mid,
            )
            accounts.append(row)
            group = sums.setdefault(account.group, [ZERO, ZERO, ZERO])
            group[0] += row.margin_reporting
            group[1] += row.equity_reporting
            group[2] += 1
        groups = {
            name: GroupMargin(margin=m, equity=e, accounts=int(n))
            for name, (m, e, n) in sorted(sums.items())
        }
        return accounts, groups


def compute(
    market: Market,
    accounts: Mapping[int, AccountTerms],
    positions: Iterable[PositionRow],
    orders: Iterable[OrderRow] = (),
) -> Exposure:
    """Exposure, margin and the house's position of `positions` and `orders` (any order: the
    figures do not depend on it, up to Decimal's last digit where a rate is inexact)."""
    calculation = _Calculation(market, accounts)
    calculation.positions(positions)
    calculation.orders(orders)
    return calculation.exposure()
