"""Symbols as an MT5 server configures them: calculation mode, contract, margin and swap terms.

Calculation modes (server numbering): 0 Forex, 1 Futures, 2 CFD, 3 CFD index, 4 CFD leverage,
5 Forex no leverage, 32 exchange stocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

FOREX, FUTURES, CFD, CFD_INDEX, CFD_LEVERAGE, FOREX_NO_LEVERAGE, EXCH_STOCKS = 0, 1, 2, 3, 4, 5, 32
EXCHANGE_MODES = range(32, 40)  # exchange stocks, futures, options, bonds: traded at a Last price
SWAP_POINTS, SWAP_INTEREST_CURRENT = 1, 5
WEDNESDAY = 3


@dataclass(frozen=True)
class Symbol:
    name: str
    path: str
    calc_mode: int
    base: str
    profit: str
    margin: str
    contract_size: Decimal
    digits: int
    bid: Decimal  # starting price
    spread_points: int
    tick_size: Decimal | None = None
    tick_value: Decimal | None = None
    margin_initial: Decimal = Decimal(0)
    margin_rate: Decimal = Decimal(1)
    margin_hedged: Decimal | None = None  # None: the contract size (hedged legs charged half)
    swap_mode: int = SWAP_POINTS
    swap_long: Decimal = Decimal(0)
    swap_short: Decimal = Decimal(0)
    swap_3day: int = WEDNESDAY
    margin_maintenance: Decimal = Decimal(0)
    # Per order type (0 buy, 1 sell, 2-7 pending kinds), initial and maintenance; empty: every
    # type uses `margin_rate`.
    margin_rates_initial: tuple[Decimal, ...] = ()
    margin_rates_maintenance: tuple[Decimal, ...] = ()
    margin_flags: int = 0  # 4: MARGIN_FLAGS_HEDGE_LARGE_LEG
    volume_min: int = 100  # 1/10000 lot: 0.01 lot
    volume_max: int = 1_000_000  # 100 lots
    volume_step: int = 100
    trade_mode: int = 4  # 0 disabled, 1 long only, 2 short only, 3 close only, 4 full

    @property
    def point(self) -> Decimal:
        return Decimal(1).scaleb(-self.digits)

    @property
    def ask(self) -> Decimal:
        return self.bid + self.point * self.spread_points

    @property
    def exchange(self) -> bool:
        """Traded on an exchange: its trades print a Last price, which its margin uses."""
        return self.calc_mode in EXCHANGE_MODES

    @property
    def hedged_units(self) -> Decimal:
        return self.contract_size if self.margin_hedged is None else self.margin_hedged

    def tick(self) -> tuple[Decimal, Decimal]:
        """(TickSize, TickValue); TickValue is in the profit currency per lot."""
        size = self.tick_size if self.tick_size is not None else self.point
        value = self.tick_value if self.tick_value is not None else size * self.contract_size
        return size, value


def _fx(
    name: str, bid: str, digits: int = 5, swap_long: str = "-6.5", swap_short: str = "1.2"
) -> Symbol:
    return Symbol(
        name=name,
        path=f"Forex\\{name}",
        calc_mode=FOREX,
        base=name[:3],
        profit=name[3:],
        margin=name[:3],
        contract_size=Decimal(100_000),
        digits=digits,
        bid=Decimal(bid),
        spread_points=12,
        swap_long=Decimal(swap_long),
        swap_short=Decimal(swap_short),
    )


CATALOGUE: dict[str, Symbol] = {
    s.name: s
    for s in [
        _fx("EURUSD", "1.10000"),
        _fx("GBPUSD", "1.27000"),
        _fx("AUDUSD", "0.66000"),
        _fx("NZDUSD", "0.61000"),
        _fx("USDJPY", "150.000", digits=3, swap_long="12.1", swap_short="-25.3"),
        _fx("USDCHF", "0.88000", swap_long="4.2", swap_short="-11.8"),
        _fx("USDCAD", "1.36000", swap_long="1.1", swap_short="-8.4"),
        _fx("EURGBP", "0.86000"),
        _fx("EURJPY", "165.000", digits=3),
        _fx("GBPJPY", "190.000", digits=3),
        Symbol(
            name="XAUUSD",
            path="Metals\\XAUUSD",
            calc_mode=CFD_LEVERAGE,
            base="XAU",
            profit="USD",
            margin="USD",
            contract_size=Decimal(100),
            digits=2,
            bid=Decimal("2000.00"),
            spread_points=25,
            swap_long=Decimal("-45"),
            swap_short=Decimal("12"),
        ),
        Symbol(
            name="US500",
            path="Indices\\US500",
            calc_mode=CFD,
            base="USD",
            profit="USD",
            margin="USD",
            contract_size=Decimal(1),
            digits=2,
            bid=Decimal("5000.00"),
            spread_points=50,
            margin_rate=Decimal("0.05"),
            swap_mode=SWAP_INTEREST_CURRENT,
            swap_long=Decimal("-5"),
            swap_short=Decimal("1"),
            swap_3day=5,
        ),
        Symbol(
            name="GER40",
            path="Indices\\GER40",
            calc_mode=CFD_INDEX,
            base="EUR",
            profit="EUR",
            margin="EUR",
            contract_size=Decimal(1),
            digits=1,
            bid=Decimal("18000.0"),
            spread_points=15,
            tick_size=Decimal("0.1"),
            tick_value=Decimal("0.1"),
            margin_rate=Decimal("0.05"),
            swap_mode=SWAP_INTEREST_CURRENT,
            swap_3day=5,
        ),
        Symbol(
            name="XTIUSD",
            path="Energies\\XTIUSD",
            calc_mode=CFD,
            base="XTI",
            profit="USD",
            margin="USD",
            contract_size=Decimal(1000),
            digits=3,
            bid=Decimal("75.000"),
            spread_points=30,
            margin_rate=Decimal("0.1"),
            swap_long=Decimal("-3"),
            swap_short=Decimal("-1"),
            swap_3day=5,
        ),
        Symbol(
            name="AAPL",
            path="Stocks\\US\\AAPL",
            calc_mode=EXCH_STOCKS,
            base="AAPL",
            profit="USD",
            margin="USD",
            contract_size=Decimal(1),
            digits=2,
            bid=Decimal("190.00"),
            spread_points=4,
            margin_rate=Decimal("0.2"),
            swap_mode=SWAP_INTEREST_CURRENT,
            swap_long=Decimal("-6"),
            swap_short=Decimal("-2"),
            swap_3day=5,
        ),
        Symbol(
            name="BTCUSD",
            path="Crypto\\BTCUSD",
            calc_mode=CFD_LEVERAGE,
            base="BTC",
            profit="USD",
            margin="USD",
            contract_size=Decimal(1),
            digits=2,
            bid=Decimal("60000.00"),
            spread_points=3000,
            margin_rate=Decimal("2"),
            swap_mode=SWAP_INTEREST_CURRENT,
            swap_long=Decimal("-20"),
            swap_short=Decimal("-20"),
            swap_3day=5,
        ),
        Symbol(
            name="EURUSD.nl",
            path="Forex\\NoLeverage\\EURUSD.nl",
            calc_mode=FOREX_NO_LEVERAGE,
            base="EUR",
            profit="USD",
            margin="EUR",
            contract_size=Decimal(100_000),
            digits=5,
            bid=Decimal("1.10000"),
            spread_points=12,
        ),
        Symbol(
            name="ES",
            path="Futures\\ES",
            calc_mode=FUTURES,
            base="USD",
            profit="USD",
            margin="USD",
            contract_size=Decimal(50),
            digits=2,
            bid=Decimal("5000.00"),
            spread_points=25,
            tick_size=Decimal("0.25"),
            tick_value=Decimal("12.5"),
            margin_initial=Decimal("12000"),
        ),
    ]
}
