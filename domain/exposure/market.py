"""What a calculation knows of the market, made once per calculation: each symbol's margin and
notional constants, its quote, and the currency conversions (reference: broker-domain-reference
2.1-2.4, mt5-webapi-reference 5.1).

Margin of `lots` in the symbol's margin currency, per `CalcMode`:

| mode | margin |
|---|---|
| 0 Forex | lots x ContractSize / Leverage x rate |
| 5 Forex no leverage | lots x ContractSize x rate |
| 2 CFD | lots x ContractSize x price x rate |
| 3 CFD index | lots x ContractSize x price x TickValue / TickSize x rate |
| 4 CFD leverage | lots x ContractSize x price / Leverage x rate |
| 1 Futures, 33 exchange futures, 34 FORTS futures | lots x MarginInitial x rate |
| 32 exchange stocks, 38 MOEX stocks | lots x ContractSize x Last x rate |

A symbol with a fixed `MarginInitial` (> 0) is charged lots x MarginInitial x rate whatever its
mode (MT5 help, as the reference restates it). So every mode is
`lots x per_lot x (price if priced) / (Leverage if leveraged) x rate`, which is what `Spec`
keeps.

Notional is the position's market value: lots x (profit per lot per unit of price) x price, so
a 1 % move of the price moves the figure by 1 %. Profit per lot per unit of price is
ContractSize, except for futures (1, 33, 34), where MT5 computes profit with
TickValue / TickSize.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum

from domain.errors import InvalidInput

LOT = 10000  # MT5 Web API volumes are in 1/10000 lot
ZERO = Decimal(0)
ONE = Decimal(1)
TWO = Decimal(2)
MARGIN_FLAGS_HEDGE_LARGE_LEG = 4
ORDER_TYPES = 8  # per-type margin rates: 0 buy, 1 sell, 2 buy limit ... 7 sell stop limit


class CalcMode(IntEnum):
    FOREX = 0
    FUTURES = 1
    CFD = 2
    CFD_INDEX = 3
    CFD_LEVERAGE = 4
    FOREX_NO_LEVERAGE = 5
    EXCH_STOCKS = 32
    EXCH_FUTURES = 33
    EXCH_FUTURES_FORTS = 34
    EXCH_STOCKS_MOEX = 38


# Modes the references give no formula one can rely on: refused, never guessed.
UNSUPPORTED_MODES = {
    35: "exchange options",
    36: "exchange margin options",
    37: "exchange bonds",
    39: "MOEX exchange bonds",
    64: "collateral",
}
FOREX_MODES = frozenset({CalcMode.FOREX, CalcMode.FOREX_NO_LEVERAGE})
FUTURES_MODES = frozenset({CalcMode.FUTURES, CalcMode.EXCH_FUTURES, CalcMode.EXCH_FUTURES_FORTS})
STOCK_MODES = frozenset({CalcMode.EXCH_STOCKS, CalcMode.EXCH_STOCKS_MOEX})
PRICED_MODES = frozenset({CalcMode.CFD, CalcMode.CFD_INDEX, CalcMode.CFD_LEVERAGE, *STOCK_MODES})
WEIGHTED_MODES = frozenset({CalcMode.CFD, CalcMode.CFD_INDEX, CalcMode.CFD_LEVERAGE})
LEVERAGED_MODES = frozenset({CalcMode.FOREX, CalcMode.CFD_LEVERAGE})


@dataclass(frozen=True, slots=True)
class SymbolTerms:
    """A symbol's settings as the calculation reads them (from `symbol/get`)."""

    name: str
    calc_mode: int
    base: str
    profit: str
    margin: str
    contract_size: Decimal
    digits: int = 5
    tick_size: Decimal = ZERO  # 0: one point
    tick_value: Decimal = ZERO  # 0: TickSize x ContractSize (in the profit currency)
    margin_initial: Decimal = ZERO
    margin_hedged: Decimal | None = None  # None: ContractSize
    margin_rates: tuple[Decimal, ...] = (ONE, ONE) + (ZERO,) * (ORDER_TYPES - 2)
    margin_flags: int = 0


@dataclass(frozen=True, slots=True)
class Quote:
    bid: Decimal
    ask: Decimal
    last: Decimal | None = None

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / TWO


@dataclass(frozen=True, slots=True)
class Spec:
    """One symbol's constants for the calculation (see the module's table)."""

    name: str
    terms: SymbolTerms
    per_lot: Decimal  # ContractSize, ContractSize x TickValue / TickSize or MarginInitial
    priced: bool  # margin multiplies a price
    leveraged: bool  # margin divides by the account's leverage
    fixed_price: Decimal | None  # exchange stocks: margin at Last, not at the open price
    hedged_ratio: Decimal  # MarginHedged / ContractSize
    large_leg: bool  # MARGIN_FLAGS_HEDGE_LARGE_LEG
    rates: tuple[Decimal, ...]  # initial margin rate per order type
    # Margin of one position side per volume unit, before leverage: per_lot x rate / LOT (x Last
    # for exchange stocks); times volume x open price when `weighted`, else times volume.
    side_factors: tuple[Decimal, Decimal]
    weighted: bool
    notional_per_volume: Decimal  # reporting currency per 1/10000 lot, at the mid
    value_per_volume: Decimal  # reporting currency per 1/10000 lot per unit of price
    mid: Decimal

    def margin(self, lots: Decimal, price: Decimal, leverage: int, rate: Decimal) -> Decimal:
        """Margin of `lots` at `price` (ignored when the mode has no price, replaced by Last for
        exchange stocks), in the symbol's margin currency."""
        amount = lots * self.per_lot * rate
        if self.priced:
            amount *= price if self.fixed_price is None else self.fixed_price
        if self.leveraged:
            amount /= leverage
        return amount


def _ticks(terms: SymbolTerms) -> tuple[Decimal, Decimal]:
    size = terms.tick_size or Decimal(1).scaleb(-terms.digits)
    value = terms.tick_value or size * terms.contract_size
    return size, value


class Rates:
    """Currency conversion from the quotes of the document's forex symbols (CalcMode 0 and 5),
    found by (CurrencyBase, CurrencyProfit): the direct pair, else the inverse one, else a cross
    through USD. `mid` values exposure (the same rate for longs and shorts, so opposite legs
    cancel); `charge` converts margin on the side less favourable to the client, as MT5 charges
    it (direct pair at the ask, inverse at 1 / bid; reference 2.3, unverified)."""

    def __init__(self, pairs: dict[tuple[str, str], Quote]) -> None:
        self._pairs = pairs
        self._cache: dict[tuple[str, str, bool], Decimal] = {}

    def mid(self, source: str, target: str) -> Decimal:
        return self._rate(source, target, charge=False)

    def charge(self, source: str, target: str) -> Decimal:
        return self._rate(source, target, charge=True)

    def _rate(self, source: str, target: str, *, charge: bool) -> Decimal:
        key = (source, target, charge)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._find(source, target, charge)
        return found

    def _find(self, source: str, target: str, charge: bool) -> Decimal:
        if source == target:
            return ONE
        direct = self._pairs.get((source, target))
        if direct is not None:
            return direct.ask if charge else direct.mid
        inverse = self._pairs.get((target, source))
        if inverse is not None:
            return ONE / (inverse.bid if charge else inverse.mid)
        if "USD" not in (source, target):
            try:
                return self._find(source, "USD", charge) * self._find("USD", target, charge)
            except InvalidInput:
                pass
        raise InvalidInput(
            f"no quote converts {source} to {target}: give a forex symbol {source}{target} or"
            f" {target}{source} (or both legs through USD) and its quote"
        )


class Market:
    """The symbols, quotes and conversions of one calculation into `currency`."""

    def __init__(self, currency: str, symbols: list[SymbolTerms], quotes: dict[str, Quote]):
        self.currency = currency
        pairs: dict[tuple[str, str], Quote] = {}
        for terms in symbols:
            if terms.calc_mode in FOREX_MODES and terms.name in quotes:
                pairs.setdefault((terms.base, terms.profit), quotes[terms.name])
        self.rates = Rates(pairs)
        # Symbols whose margin reads the positions' open prices (Spec.weighted): the only ones
        # whose rows need volume x price summed.
        self.weighted = frozenset(
            terms.name
            for terms in symbols
            if terms.calc_mode in WEIGHTED_MODES and not terms.margin_initial > 0
        )
        self._terms = {terms.name: terms for terms in symbols}
        self._quotes = quotes
        self._specs: dict[str, Spec] = {}

    def spec(self, name: str) -> Spec:
        found = self._specs.get(name)
        if found is None:
            found = self._specs[name] = self._make(name)
        return found

    def _make(self, name: str) -> Spec:
        terms = self._terms.get(name)
        if terms is None:
            raise InvalidInput(f"symbol {name!r} is not in symbols")
        quote = self._quotes.get(name)
        if quote is None:
            raise InvalidInput(f"symbol {name}: no quote")
        try:
            mode = CalcMode(terms.calc_mode)
        except ValueError:
            what = UNSUPPORTED_MODES.get(terms.calc_mode, "unknown")
            raise InvalidInput(
                f"symbol {name}: CalcMode {terms.calc_mode} ({what}) is not computed"
            ) from None
        size, value = _ticks(terms)
        if mode in FUTURES_MODES or terms.margin_initial > 0:
            per_lot, priced, leveraged = terms.margin_initial, False, False
        elif mode is CalcMode.CFD_INDEX:
            per_lot, priced, leveraged = terms.contract_size * value / size, True, False
        else:
            per_lot, priced, leveraged = (
                terms.contract_size,
                mode in PRICED_MODES,
                (mode in LEVERAGED_MODES),
            )
        fixed_price = None
        if mode in STOCK_MODES:
            if quote.last is None:
                raise InvalidInput(f"symbol {name}: exchange stocks need the quote's Last")
            fixed_price = quote.last
        multiplier = value / size if mode in FUTURES_MODES else terms.contract_size
        per_price = multiplier * self.rates.mid(terms.profit, self.currency) / LOT
        hedged = terms.contract_size if terms.margin_hedged is None else terms.margin_hedged
        rates = terms.margin_rates
        side_factors = (per_lot * rates[0] / LOT, per_lot * rates[1] / LOT)
        if priced and fixed_price is not None:
            side_factors = (side_factors[0] * fixed_price, side_factors[1] * fixed_price)
        return Spec(
            name=name,
            terms=terms,
            per_lot=per_lot,
            priced=priced,
            leveraged=leveraged,
            fixed_price=fixed_price,
            hedged_ratio=hedged / terms.contract_size,
            large_leg=bool(terms.margin_flags & MARGIN_FLAGS_HEDGE_LARGE_LEG),
            rates=rates,
            side_factors=side_factors,
            weighted=priced and fixed_price is None,
            notional_per_volume=per_price * quote.mid,
            value_per_volume=per_price,
            mid=quote.mid,
        )
