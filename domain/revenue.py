"""What the broker earned on each deal, against the raw market the deal carries
(docs/revenue.md).

MT5's dealer plugin marks the client's price up from the raw quote (buy at Ask + markup, sell
at Bid - markup) and routes the deal: kept in-house (B-book) or passed to a liquidity provider
through a gateway (A-book). A deal records the raw quote it was filled against
(`MarketBid`/`MarketAsk`), and an A-book deal its LP gateway and the LP's price
(`Gateway`/`PriceGateway`). From those, per deal (s = +1 for a client buy, -1 for a sell; R
the raw price on the client's side: MarketAsk for a buy, MarketBid for a sell; M the raw mid;
units = lots x ContractSize; amounts converted to the deposit currency with RateProfit):

* captured spread, points   2 s (Price - M) / point: the raw spread plus twice this side's markup,
                            the figure comparable with a symbol's Spread (Ask - Bid)
* spread captured, amount   s (Price - M) units: what this deal paid against the raw mid
* markup, points / amount   s (Price - R) / point, s (Price - R) units
* slippage, points          s (Price - requested) / point: positive when the client's price was
                            worse than the order asked (PriceOrder), negative an improvement
* gateway slippage, points  s (PriceGateway - R) / point (A-book): the LP's fill against the raw
                            quote, positive when worse
* A-book cost, amount       s (PriceGateway - Price) units (A-book): what the LP's price cost the
                            broker against the client's; negative when the broker kept a markup
* commission / fee revenue  -Commission, -Fee (MT5 signs charges from the client's side)
* B-book P&L, realised      -Profit on a deal kept in-house (the client's loss is the house's gain)

A deal without a raw quote (MarketBid/MarketAsk 0: an older build, a balance deal) and a Close
By deal (no market crossed) have no spread, markup or slippage: None, not zero.

Pure: no I/O, no clock. Prices and amounts are exact Decimals; amounts carry their currency.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase

BUY, SELL = 0, 1
ENTRY_IN, ENTRY_OUT, ENTRY_INOUT, ENTRY_OUT_BY = 0, 1, 2, 3
TRADE_ACTIONS = frozenset({BUY, SELL})
ZERO = Decimal(0)
TWO = Decimal(2)
LOT = Decimal(10_000)  # `Volume`: 1/10000 lot
LOT_EXT = Decimal(100_000_000)  # `VolumeExt`: 1/100000000 lot
UNKNOWN_CURRENCY = "XXX"  # a login whose deposit currency BrokerFlow does not know
# History order types whose fill crosses the market at the dealer's price: market buy and sell,
# and the stop orders (a limit order fills at its own price, markup or not).
MARKET_FILL_ORDER_TYPES = frozenset({0, 1, 4, 5})


@dataclass(frozen=True, slots=True)
class Amount:
    """An exact amount in a currency (ISO 4217 code, or XXX when not known)."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not (len(self.currency) == 3 and self.currency.isalpha() and self.currency.isupper()):
            raise ValueError(f"currency {self.currency!r} is not a three-letter code")
        if not self.amount.is_finite():
            raise ValueError("amount must be a finite number")


@dataclass(frozen=True, slots=True)
class DealFacts:
    """A trade deal's fields the calculation reads (MT5 Web API names in the comments)."""

    deal: int  # Deal
    login: int  # Login
    symbol: str  # Symbol
    action: int  # Action: 0 buy, 1 sell
    entry: int  # Entry
    digits: int  # Digits
    contract_size: Decimal  # ContractSize
    volume: int  # Volume (1/10000 lot); VolumeExt wins when given
    price: Decimal  # Price
    currency: str  # the account's deposit currency
    volume_ext: int = 0  # VolumeExt (1/100000000 lot)
    market_bid: Decimal = ZERO  # MarketBid (0: not given)
    market_ask: Decimal = ZERO  # MarketAsk
    gateway: str = ""  # Gateway: the LP's gateway of an A-book deal
    price_gateway: Decimal | None = None  # PriceGateway (None: not known; 0: none)
    price_requested: Decimal | None = None  # the order's PriceOrder (None/0: not known)
    profit: Decimal = ZERO  # Profit, deposit currency
    commission: Decimal = ZERO  # Commission
    fee: Decimal = ZERO  # Fee
    rate_profit: Decimal = Decimal(1)  # RateProfit: profit currency -> deposit currency
    order_type: int | None = None  # the history order's Type (None: not known)

    @property
    def lots(self) -> Decimal:
        return Decimal(self.volume_ext) / LOT_EXT if self.volume_ext else Decimal(self.volume) / LOT

    @property
    def point(self) -> Decimal:
        return Decimal(1).scaleb(-self.digits)

    @property
    def side(self) -> int:
        return 1 if self.action == BUY else -1

    @property
    def a_book(self) -> bool:
        """Routed to a liquidity provider: the plugin stamped an LP gateway on the deal."""
        return bool(self.gateway)


@dataclass(frozen=True, slots=True)
class DealRevenue:
    """The broker's figures of one deal; points are the symbol's points, amounts in the
    deposit currency. None: not computable from what the deal carries."""

    deal: int
    a_book: bool
    lots: Decimal
    spread_points: Decimal | None
    markup_points: Decimal | None
    slippage_points: Decimal | None
    gateway_slippage_points: Decimal | None
    spread_captured: Amount | None
    markup: Amount | None
    commission_revenue: Amount
    fee_revenue: Amount
    b_book_pnl: Amount
    a_book_cost: Amount | None
    comparable: bool  # a market fill whose markup shows the plugin's configured markup


def _has_market(bid: Decimal, ask: Decimal) -> bool:
    return bid > 0 and ask > 0 and ask >= bid


def _crossed_market(action: int, entry: int, bid: Decimal, ask: Decimal) -> bool:
    return action in TRADE_ACTIONS and entry != ENTRY_OUT_BY and _has_market(bid, ask)


def captured_spread_points(
    action: int, price: Decimal, market_bid: Decimal, market_ask: Decimal, digits: int
) -> Decimal | None:
    """The spread a deal's client paid, in points: 2 s (Price - raw mid) / point, i.e. the raw
    spread (MarketAsk - MarketBid) plus twice the markup on the deal's side; what a "percent of
    spread" rule multiplies (half of it per market side). None without a raw quote or for a
    deal that is not a buy or a sell."""
    if action not in TRADE_ACTIONS or not _has_market(market_bid, market_ask):
        return None
    side = 1 if action == BUY else -1
    mid = (market_bid + market_ask) / TWO
    return TWO * side * (price - mid) / Decimal(1).scaleb(-digits)


def captured_markup_points(
    action: int, price: Decimal, market_bid: Decimal, market_ask: Decimal, digits: int
) -> Decimal | None:
    """The dealer's markup on a deal, in points: s (Price - raw price of the client's side) /
    point. None without a raw quote or for a deal that is not a buy or a sell."""
    if action not in TRADE_ACTIONS or not _has_market(market_bid, market_ask):
        return None
    raw = market_ask if action == BUY else market_bid
    side = 1 if action == BUY else -1
    return side * (price - raw) / Decimal(1).scaleb(-digits)


def deal_revenue(deal: DealFacts) -> DealRevenue:
    """The broker's figures of one trade deal (see the module's docstring)."""
    currency = deal.currency
    units = deal.lots * deal.contract_size
    side = deal.side

    def money(price_difference: Decimal) -> Amount:
        return Amount(side * price_difference * units * deal.rate_profit, currency)

    def points(price_difference: Decimal) -> Decimal:
        return side * price_difference / deal.point

    crossed = _crossed_market(deal.action, deal.entry, deal.market_bid, deal.market_ask)
    spread_points = markup_points = slippage = gateway_slippage = None
    spread_captured = markup = a_book_cost = None
    if crossed:
        raw = deal.market_ask if deal.action == BUY else deal.market_bid
        mid = (deal.market_bid + deal.market_ask) / TWO
        spread_points = TWO * points(deal.price - mid)
        markup_points = points(deal.price - raw)
        spread_captured = money(deal.price - mid)
        markup = money(deal.price - raw)
        if deal.a_book and deal.price_gateway:
            gateway_slippage = points(deal.price_gateway - raw)
    if (
        deal.action in TRADE_ACTIONS
        and deal.entry != ENTRY_OUT_BY
        and deal.price_requested
        and deal.price_requested > 0
    ):
        slippage = points(deal.price - deal.price_requested)
    if deal.a_book and deal.price_gateway and deal.action in TRADE_ACTIONS:
        a_book_cost = money(deal.price_gateway - deal.price)
    return DealRevenue(
        deal=deal.deal,
        a_book=deal.a_book,
        lots=deal.lots,
        spread_points=spread_points,
        markup_points=markup_points,
        slippage_points=slippage,
        gateway_slippage_points=gateway_slippage,
        spread_captured=spread_captured,
        markup=markup,
        commission_revenue=Amount(-deal.commission, currency),
        fee_revenue=Amount(-deal.fee, currency),
        b_book_pnl=Amount(ZERO if deal.a_book else -deal.profit, currency),
        a_book_cost=a_book_cost,
        comparable=crossed and deal.order_type in MARKET_FILL_ORDER_TYPES,
    )


# --- the dealer plugin's configuration, as BrokerFlow mirrors it ------------------------------


@dataclass(frozen=True, slots=True)
class DealerRule:
    """One rule of the mirrored dealer-plugin configuration: the first rule (in order) whose
    group mask and symbol mask match a deal's account group and symbol applies. Masks use `*`
    and `?` as MT5 does; the group is matched without regard to case."""

    group_mask: str
    symbol_mask: str = "*"
    markup_points: int = 0
    a_book: bool = False
    gateway: str = ""  # A-book: the LP gateway its deals carry ("": any); B-book: ignored


NO_RULE = DealerRule("*")  # what the plugin does with a deal no rule names: raw price, B-book


def rule_for(rules: Sequence[DealerRule], group: str, symbol: str) -> DealerRule:
    for rule in rules:
        if fnmatchcase(group.lower(), rule.group_mask.lower()) and fnmatchcase(
            symbol, rule.symbol_mask
        ):
            return rule
    return NO_RULE


@dataclass(frozen=True, slots=True)
class Observed:
    """Comparable deals of a group, symbol and gateway as the mirror check reads them: their
    lowest and highest markup (one deal: both its markup)."""

    group: str
    symbol: str
    gateway: str
    low_points: Decimal
    high_points: Decimal
    deals: int = 1


@dataclass(frozen=True, slots=True)
class MirrorCheck:
    """A group and symbol: what the mirror says and what the deals showed."""

    group: str
    symbol: str
    deals: int
    mirrored_markup_points: int
    observed_min_points: Decimal
    observed_max_points: Decimal
    mirrored_gateway: str  # "" : B-book
    observed_gateways: tuple[str, ...]
    markup_differs: bool
    routing_differs: bool

    @property
    def flagged(self) -> bool:
        return self.markup_differs or self.routing_differs


def check_mirror(
    rules: Sequence[DealerRule], observed: Iterable[Observed], tolerance_points: Decimal = ZERO
) -> list[MirrorCheck]:
    """Per group and symbol seen, the mirrored rule against the deals' markup and routing: a
    markup outside mirrored +- `tolerance_points`, a B-book rule's deal with a gateway, an
    A-book rule's deal without one or with another than the rule names, is flagged."""
    seen: dict[tuple[str, str], list[Observed]] = {}
    for one in observed:
        seen.setdefault((one.group, one.symbol), []).append(one)
    checks = []
    for (group, symbol), deals in sorted(seen.items()):
        rule = rule_for(rules, group, symbol)
        low = min(d.low_points for d in deals)
        high = max(d.high_points for d in deals)
        gateways = tuple(sorted({d.gateway for d in deals}))
        expected = rule.gateway if rule.a_book else ""
        if rule.a_book:  # routed: every deal carries a gateway, the mirrored one when named
            routing_differs = "" in gateways or (bool(rule.gateway) and gateways != (rule.gateway,))
        else:
            routing_differs = gateways != ("",)
        checks.append(
            MirrorCheck(
                group=group,
                symbol=symbol,
                deals=sum(d.deals for d in deals),
                mirrored_markup_points=rule.markup_points,
                observed_min_points=low,
                observed_max_points=high,
                mirrored_gateway=expected,
                observed_gateways=gateways,
                markup_differs=(
                    low < rule.markup_points - tolerance_points
                    or high > rule.markup_points + tolerance_points
                ),
                routing_differs=routing_differs,
            )
        )
    return checks


# --- B-book floating and slippage patterns -----------------------------------------------------


def floating_b_book(profits: Iterable[tuple[Decimal, str]]) -> dict[str, Decimal]:
    """The house's floating P&L on open B-book positions, per deposit currency: minus the
    clients' floating profit (`Profit` of `position/get`, MT5's valuation at current quotes)."""
    totals: dict[str, Decimal] = {}
    for profit, currency in profits:
        totals[currency] = totals.get(currency, ZERO) - profit
    return totals


@dataclass(frozen=True, slots=True)
class SlippageStats:
    """Slippage of a bucket of deals, in points (positive: worse for the client, or for the
    broker at the LP). `worse`/`better`/`exact`: deals counted each way."""

    deals: int
    mean_points: Decimal
    worst_points: Decimal
    best_points: Decimal
    worse: int
    better: int
    exact: int


def slippage_stats(values: Sequence[Decimal]) -> SlippageStats | None:
    if not values:
        return None
    return SlippageStats(
        deals=len(values),
        mean_points=sum(values, ZERO) / len(values),
        worst_points=max(values),
        best_points=min(values),
        worse=sum(1 for v in values if v > 0),
        better=sum(1 for v in values if v < 0),
        exact=sum(1 for v in values if v == 0),
    )
