"""The trading engine: deals, positions, margin and equity as an MT5 trade server keeps them.

Volumes are integers in 1/10000 lot (the Web API's unit). Money is Decimal, rounded to the
group's currency digits whenever it lands on a deal or a balance. Times are UTC milliseconds from
the server clock (`self.clock`); days end at the server zone's midnight.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from simulators.mt5 import retcodes as rc
from simulators.mt5.catalogue import (
    CATALOGUE,
    CFD,
    CFD_INDEX,
    CFD_LEVERAGE,
    EXCH_STOCKS,
    FOREX,
    FOREX_NO_LEVERAGE,
    FUTURES,
    SWAP_INTEREST_CURRENT,
    Symbol,
)
from simulators.mt5.clock import ServerClock
from simulators.mt5.config import symbol_for_group
from simulators.mt5.feed import SessionCalendar, TickTape, trades_on
from simulators.mt5.retcodes import Refusal
from simulators.mt5.state import (
    RIGHT_ENABLED,
    RIGHT_TRADE_DISABLED,
    Books,
    Deal,
    Order,
    Position,
    User,
)

LOT = 10_000
BUY, SELL = 0, 1
ENTRY_IN, ENTRY_OUT, ENTRY_INOUT, ENTRY_OUT_BY = 0, 1, 2, 3
REASON_CLIENT, REASON_DEALER, REASON_SL, REASON_TP, REASON_SO = 0, 2, 3, 4, 5
ORDER_PLACED, ORDER_CANCELED, ORDER_FILLED, ORDER_REJECTED = 1, 2, 4, 5
BUY_LIMIT, SELL_LIMIT, BUY_STOP, SELL_STOP, BUY_STOP_LIMIT, SELL_STOP_LIMIT = 2, 3, 4, 5, 6, 7
ORDER_CLOSE_BY = 8
PENDING_TYPES = {BUY_LIMIT, SELL_LIMIT, BUY_STOP, SELL_STOP, BUY_STOP_LIMIT, SELL_STOP_LIMIT}
NETTING, HEDGING = 0, 2
RATE_PLACES = Decimal("0.00000001")
MARGIN_FLAGS_HEDGE_LARGE_LEG = 4
# Symbol TradeMode.
TRADE_DISABLED, TRADE_LONG_ONLY, TRADE_SHORT_ONLY, TRADE_CLOSE_ONLY = 0, 1, 2, 3
TRADEFLAGS_FIFO_CLOSE, TRADEFLAGS_HEDGE_PROHIBIT = 0x100, 0x200  # group `TradeFlags`
FREE_MARGIN_NOT_USE_PL, FREE_MARGIN_USE_PL, FREE_MARGIN_PROFIT, FREE_MARGIN_LOSS = 0, 1, 2, 3
# Group commission rules (reference 4.8).
COMM_STANDARD, COMM_AGENT, COMM_FEE = 0, 1, 2
CHARGE_DAILY, CHARGE_MONTHLY, CHARGE_INSTANT = 0, 1, 2
ENTRY_MODE_ALL, ENTRY_MODE_IN, ENTRY_MODE_OUT = 0, 1, 2
RANGE_VOLUME, RANGE_TURNOVER_MONEY, RANGE_TURNOVER_VOLUME, RANGE_VALUE, RANGE_PROFIT = 0, 1, 2, 3, 4
TIER_DEPOSIT, TIER_BASE, TIER_PROFIT, TIER_MARGIN, TIER_PIPS, TIER_PERCENT = 0, 1, 2, 3, 4, 5
TIER_CURRENCY, TIER_PERCENT_PROFIT = 6, 7
PER_LOT = 1
# Deal actions of money that is not a trade.
DEAL_CREDIT = 3
DEAL_COMMISSION_DAILY, DEAL_COMMISSION_MONTHLY, DEAL_AGENT_DAILY, DEAL_AGENT_MONTHLY = 8, 9, 10, 11
DEAL_AGENT = 18
# What accumulates on a user until the end of the day / month, and the deal that settles it.
DAILY_ACCRUALS = (
    ("commission_daily", DEAL_COMMISSION_DAILY, "daily commission"),
    ("commission_agent_daily", DEAL_AGENT_DAILY, "daily agent commission"),
)
MONTHLY_ACCRUALS = (
    ("commission_monthly", DEAL_COMMISSION_MONTHLY, "monthly commission"),
    ("commission_agent_monthly", DEAL_AGENT_MONTHLY, "monthly agent commission"),
)


@dataclass(frozen=True)
class DealerRule:
    """The dealer plugin's treatment of a group: markup on the client price, and the book.

    A-book deals are passed to a liquidity provider: they carry its gateway name and the LP's
    execution price (the raw market price); B-book deals stay in-house.
    """

    group_mask: str
    symbol_mask: str = "*"
    markup_points: int = 0
    a_book: bool = False
    gateway: str = ""


DEFAULT_DEALER_RULES = [
    DealerRule("demo\\*"),
    DealerRule("real\\standard", "XAUUSD", markup_points=30),
    DealerRule("real\\standard", markup_points=10),
    DealerRule("real\\pro", markup_points=0, a_book=True, gateway="LP-Prime"),
]


@dataclass(frozen=True)
class AccountState:
    balance: Decimal
    credit: Decimal
    margin: Decimal
    profit: Decimal
    storage: Decimal
    equity: Decimal
    margin_free: Decimal
    margin_level: Decimal
    leverage: int
    digits: int
    activation: int = 0  # 0 none, 1 margin call, 2 stop out level reached


def sign(action: int) -> int:
    return 1 if action == BUY else -1


def lots(volume: int) -> Decimal:
    return Decimal(volume) / LOT


def mt5_weekday(day: date) -> int:
    """MT5 numbers the days of the week from Sunday (0), as in `Swap3Day`."""
    return (day.weekday() + 1) % 7


def _number(record: dict[str, Any], key: str) -> Decimal:
    return Decimal(str(record.get(key) or 0))


class Engine:
    def __init__(self, books: Books, catalogue: dict[str, Symbol] | None = None) -> None:
        self.books = books
        self.catalogue = catalogue or CATALOGUE
        self.dealer_rules = list(DEFAULT_DEALER_RULES)
        # Refuse trades outside a symbol's session (`--sessions`); off by default so that a
        # test run on a Saturday still trades FX.
        self.enforce_sessions = False
        self.calendar = SessionCalendar()
        self.clock = ServerClock()
        # Tick transactions for `tick/last?trans_id=`: a counter bumped by every quote change and,
        # per symbol, the transaction and time of its last change (not persisted: a restart
        # starts the count again, and a client's id from before it sees every symbol once).
        self.tick_serial = 0
        self.tick_changes: dict[str, tuple[int, int]] = {}
        # Quotes as they were printed, for `tick/history` (bounded; see `TickTape`).
        self.tape = TickTape()

    def dealer_rule(self, group: str, symbol: str) -> DealerRule:
        """The first rule whose group and symbol masks match."""
        for rule in self.dealer_rules:
            if fnmatch.fnmatchcase(group.lower(), rule.group_mask.lower()) and fnmatch.fnmatchcase(
                symbol, rule.symbol_mask
            ):
                return rule
        return DealerRule(group)

    # -- prices and currencies -------------------------------------------------------------

    def symbol(self, name: str) -> Symbol:
        found = self.catalogue.get(name)
        if found is None:
            raise Refusal(rc.ERR_NOTFOUND)
        return found

    def symbol_for(self, login: int, name: str) -> Symbol:
        """The symbol as `login` trades it: its group's `Symbols[]` overrides applied."""
        return symbol_for_group(self.symbol(name), self.group(login))

    def quote(self, name: str) -> tuple[Decimal, Decimal]:
        stored = self.books.quotes.get(name)
        if stored is not None:
            return Decimal(stored[0]), Decimal(stored[1])
        symbol = self.symbol(name)
        return symbol.bid, symbol.ask

    def last(self, name: str) -> Decimal:
        """The Last price: the third element of the stored quote. An exchange symbol whose Last
        was never given trades at its bid; OTC symbols have no trades to print (0)."""
        stored = self.books.quotes.get(name)
        if stored is not None and len(stored) > 2:
            return Decimal(stored[2])
        return self.quote(name)[0] if self.symbol(name).exchange else Decimal(0)

    def set_quote(
        self, name: str, bid: Decimal, ask: Decimal, last: Decimal | None = None
    ) -> list[Deal]:
        """Move the market; pending orders and SL/TP it reaches execute. Returns their deals.

        `Books.quotes` keeps [bid, ask] and, when there is one, Last as a third element (an
        exchange symbol without a given Last prints a trade at the bid)."""
        symbol = self.symbol(name)
        if ask < bid or bid <= 0 or (last is not None and last <= 0):
            raise Refusal(rc.ERR_PARAMS)
        stored = [str(bid), str(ask)]
        if last is not None or symbol.exchange:
            stored.append(str(bid if last is None else last))
        self.books.quotes[name] = stored
        self.tick_serial += 1
        now = self.clock.now_msc()
        self.tick_changes[name] = (self.tick_serial, now)
        self.tape.record(name, now, int(bid.scaleb(symbol.digits)), int(ask.scaleb(symbol.digits)))
        return self.trigger(name)

    def rate(
        self, source: str, target: str, *, for_margin: bool = False, loss: bool = False
    ) -> Decimal:
        """Units of `target` per unit of `source`, from the quotes of a direct, inverse or USD
        cross pair, on the side less favourable to the client (reference 2.3): the lower rate
        for a gain (direct at the bid, inverse at 1/ask), the higher one for a loss, a charge
        or margin (direct at the ask, inverse at 1/bid)."""
        if source == target:
            return Decimal(1)
        high = for_margin or loss
        direct, inverse = source + target, target + source
        if direct in self.catalogue:
            bid, ask = self.quote(direct)
            return (ask if high else bid).quantize(RATE_PLACES)
        if inverse in self.catalogue:
            bid, ask = self.quote(inverse)
            return (Decimal(1) / (bid if high else ask)).quantize(RATE_PLACES)
        if "USD" in (source, target):
            raise Refusal(rc.ERR_NOTFOUND)
        return (self.rate(source, "USD", loss=high) * self.rate("USD", target, loss=high)).quantize(
            RATE_PLACES
        )

    def to_deposit(self, login: int, amount: Decimal, currency: str) -> Decimal:
        """`amount` of `currency` in the account's currency (unrounded), gains at the lower rate
        and losses at the higher one."""
        return amount * self.rate(currency, self.currency(login), loss=amount < 0)

    # -- accounts --------------------------------------------------------------------------

    def user(self, login: int) -> User:
        user = self.books.users.get(login)
        if user is None:
            raise Refusal(rc.ERR_NOTFOUND)
        return user

    def may_trade(self, login: int) -> bool:
        """The account may connect (`Rights` has ENABLED) and its trading is not off
        (TRADE_DISABLED clear)."""
        rights = self.user(login).rights
        return bool(rights & RIGHT_ENABLED) and not rights & RIGHT_TRADE_DISABLED

    def require_trading(self, login: int) -> None:
        """Refuse a trade request of an account that may not trade (`10017 Trade disabled`).

        Only requests are refused: the server's own executions (pending orders and SL/TP the
        market reaches, stop-outs) and the manager's balance operations go on.
        """
        if not self.may_trade(login):
            raise Refusal(rc.REQUEST_TRADE_DISABLED)

    def group(self, login: int) -> dict[str, Any]:
        return self.books.groups[self.user(login).group]

    def hedging(self, login: int) -> bool:
        return int(str(self.group(login)["MarginMode"])) == HEDGING

    def currency(self, login: int) -> str:
        return str(self.group(login)["Currency"])

    def money(self, login: int, amount: Decimal) -> Decimal:
        digits = int(str(self.group(login)["CurrencyDigits"]))
        return amount.quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP)

    def positions_of(self, login: int) -> list[Position]:
        return self.books.positions_of(login)

    def floating_profit(self, position: Position) -> Decimal:
        """Profit if closed now (at the bid for buys, the ask for sells), in deposit currency."""
        symbol = self.symbol_for(position.login, position.symbol)
        bid, ask = self.quote(position.symbol)
        close = bid if position.action == BUY else ask
        raw = self.raw_profit(
            symbol, position.action, position.volume, Decimal(position.price_open), close
        )
        return self.money(position.login, self.to_deposit(position.login, raw, symbol.profit))

    @staticmethod
    def raw_profit(
        symbol: Symbol, action: int, volume: int, open_price: Decimal, close: Decimal
    ) -> Decimal:
        """Profit in the symbol's profit currency, per calculation mode."""
        move = (close - open_price) * sign(action)
        if symbol.calc_mode == FUTURES:
            tick_size, tick_value = symbol.tick()
            return move * tick_value / tick_size * lots(volume)
        return move * symbol.contract_size * lots(volume)

    # -- margin ----------------------------------------------------------------------------

    @staticmethod
    def margin_rates(symbol: Symbol, *, initial: bool) -> tuple[Decimal, ...]:
        """The symbol's margin rates per order type (0 buy, 1 sell, 2-7 pending kinds):
        maintenance rates, when configured, for what is already open, else the initial ones;
        empty when the symbol configures none (then `margin_rate` applies to positions)."""
        if not initial and symbol.margin_rates_maintenance:
            return symbol.margin_rates_maintenance
        return symbol.margin_rates_initial

    def margin_rate(self, symbol: Symbol, order_type: int, *, initial: bool = True) -> Decimal:
        rates = self.margin_rates(symbol, initial=initial)
        return rates[order_type] if rates else symbol.margin_rate

    def margin_for(
        self,
        symbol: Symbol,
        size: Decimal,
        price: Decimal,
        leverage: int,
        rate: Decimal,
        *,
        initial: bool = True,
    ) -> Decimal:
        """Margin of `size` lots in the symbol's margin currency, per calculation mode
        (reference 2.2); `price` is the open price, or Last for exchange symbols."""
        mode = symbol.calc_mode
        if mode == FOREX:
            return size * symbol.contract_size / leverage * rate
        if mode == FOREX_NO_LEVERAGE:
            return size * symbol.contract_size * rate
        if mode == FUTURES:
            per_lot = symbol.margin_initial
            if not initial and symbol.margin_maintenance:
                per_lot = symbol.margin_maintenance
            return size * per_lot * rate
        if mode in (CFD, EXCH_STOCKS):
            return size * symbol.contract_size * price * rate
        if mode == CFD_INDEX:
            tick_size, tick_value = symbol.tick()
            return size * symbol.contract_size * price * tick_value / tick_size * rate
        if mode == CFD_LEVERAGE:
            return size * symbol.contract_size * price / leverage * rate
        raise Refusal(rc.ERR_PARAMS)

    def margin(self, login: int, *, initial: bool = False) -> Decimal:
        """The account's margin in its currency: positions per symbol (hedged legs as the
        symbol's settings say) plus pending orders of the types the symbol charges. `initial`:
        at the initial rates, which a new order must fit under; else at the maintenance rates
        that open positions are held at (the same unless a symbol configures them)."""
        user = self.user(login)
        hedging = self.hedging(login)
        by_symbol: dict[str, list[Position]] = {}
        for position in self.positions_of(login):
            by_symbol.setdefault(position.symbol, []).append(position)
        total = Decimal(0)
        for name in sorted(by_symbol):
            symbol = self.symbol_for(login, name)
            own = self._symbol_margin(symbol, by_symbol[name], user.leverage, hedging, initial)
            total += own * self.rate(symbol.margin, self.currency(login), for_margin=True)
        for order in self.books.orders.values():
            if order.login == login:
                total += self._order_margin(order, user.leverage, initial)
        return self.money(login, total)

    def _order_margin(self, order: Order, leverage: int, initial: bool) -> Decimal:
        """A pending order is charged only where the symbol configures per-type rates (a rate
        above 0 for its type), as exchange symbols do; retail symbols charge none."""
        symbol = self.symbol_for(order.login, order.symbol)
        rates = self.margin_rates(symbol, initial=initial)
        if not rates or not rates[order.type]:
            return Decimal(0)
        price = self.last(symbol.name) if symbol.exchange else Decimal(order.price_order)
        size = lots(order.volume_current)
        margin = self.margin_for(symbol, size, price, leverage, rates[order.type], initial=initial)
        return margin * self.rate(symbol.margin, self.currency(order.login), for_margin=True)

    def _symbol_margin(
        self, symbol: Symbol, legs: list[Position], leverage: int, hedging: bool, initial: bool
    ) -> Decimal:
        """Margin of one symbol's positions in its margin currency (reference 2.4).

        Positions are priced at their (weighted average) open price, in netting and hedging
        accounts alike; exchange symbols at Last. Hedging: the uncovered volume at the larger
        leg's average price and rate, the hedged volume x MarginHedged / ContractSize at the
        average of both legs' prices and the higher of the two side rates; with
        MARGIN_FLAGS_HEDGE_LARGE_LEG only the larger leg's margin.
        """
        by_side = {side: [p for p in legs if p.action == side] for side in (BUY, SELL)}
        volume = {side: sum(p.volume for p in by_side[side]) for side in (BUY, SELL)}
        price = {
            side: self.last(symbol.name) if symbol.exchange else average_open(by_side[side])
            for side in (BUY, SELL)
            if by_side[side]
        }
        rate = {side: self.margin_rate(symbol, side, initial=initial) for side in (BUY, SELL)}

        def side_margin(side: int, size: Decimal) -> Decimal:
            return self.margin_for(symbol, size, price[side], leverage, rate[side], initial=initial)

        if not hedging or not (volume[BUY] and volume[SELL]):
            return sum((side_margin(side, lots(volume[side])) for side in price), Decimal(0))
        if symbol.margin_flags & MARGIN_FLAGS_HEDGE_LARGE_LEG:
            return max(side_margin(side, lots(volume[side])) for side in (BUY, SELL))
        larger = BUY if volume[BUY] >= volume[SELL] else SELL
        hedged = min(volume[BUY], volume[SELL])
        uncovered = side_margin(larger, lots(volume[BUY] + volume[SELL] - 2 * hedged))
        hedged_size = lots(hedged) * symbol.hedged_units / symbol.contract_size
        hedged_margin = self.margin_for(
            symbol,
            hedged_size,
            (price[BUY] + price[SELL]) / 2,
            leverage,
            max(rate[BUY], rate[SELL]),
            initial=initial,
        )
        return uncovered + hedged_margin

    def account(self, login: int) -> AccountState:
        user = self.user(login)
        balance, credit = user.money
        positions = self.positions_of(login)
        profit = sum((self.floating_profit(p) for p in positions), Decimal(0))
        storage = sum((Decimal(p.storage) for p in positions), Decimal(0))
        equity = balance + credit + profit + storage
        margin = self.margin(login)
        level = (equity / margin * 100).quantize(Decimal("0.01")) if margin else Decimal(0)
        group = self.group(login)
        funds = balance + credit + counted_floating(profit + storage, group)
        activation = 0
        if margin and int(group.get("MarginSOMode", 0)) == 0:
            if level <= Decimal(str(group["MarginStopOut"])):
                activation = 2
            elif level <= Decimal(str(group["MarginCall"])):
                activation = 1
        return AccountState(
            balance=balance,
            credit=credit,
            margin=margin,
            profit=profit,
            storage=storage,
            equity=equity,
            margin_free=funds - margin,
            margin_level=level,
            leverage=user.leverage,
            digits=int(str(group["CurrencyDigits"])),
            activation=activation,
        )

    def _fits_initial_margin(self, login: int) -> bool:
        """Free margin at the initial rates is not negative (the check of a new order)."""
        state = self.account(login)
        return state.margin_free + state.margin - self.margin(login, initial=True) >= 0

    # -- balance operations ----------------------------------------------------------------

    def balance_operation(
        self, login: int, action: int, amount: Decimal, comment: str, *, check_margin: bool
    ) -> tuple[Deal, list[Deal]]:
        """Book a balance-type deal of `action` (3 credit moves Credit, the others Balance),
        then stop the account out if the money taken left it at or under its level. Taking
        more than there is (or, with `check_margin`, more than the free margin) is `10019`."""
        user = self.user(login)
        amount = self.money(login, amount)
        balance, credit = user.money
        if action == DEAL_CREDIT:
            if credit + amount < 0:
                raise Refusal(rc.REQUEST_NO_MONEY)
            user.credit = str(credit + amount)
        else:
            if amount < 0 and (
                balance + amount < 0
                or (check_margin and self.account(login).margin_free + amount < 0)
            ):
                raise Refusal(rc.REQUEST_NO_MONEY)
            user.balance = str(balance + amount)
        deal = Deal(
            deal=self.books.new_ticket(),
            login=login,
            action=action,
            profit=str(amount),
            comment=comment[:31],
            time_msc=self.clock.now_msc(),
        )
        self.books.add_deal(deal)
        return deal, self.stop_out(login)

    # -- trading ---------------------------------------------------------------------------

    def market(
        self,
        login: int,
        name: str,
        action: int,
        volume: int,
        *,
        position_id: int = 0,
        reason: int = REASON_DEALER,
        comment: str = "",
    ) -> list[Deal]:
        """A market request: checked against the symbol's volume limits, trade mode and
        session, then executed at the current quote (buy at the ask, sell at the bid)."""
        self.user(login)
        symbol = self.symbol_for(login, name)
        if action not in (BUY, SELL):
            raise Refusal(rc.ERR_PARAMS)
        opening = self._opens(login, symbol, action, volume, position_id)
        self._check_request(login, symbol, action, volume, opening=opening)
        self._check_group_rules(login, symbol, action, position_id, opening=opening)
        if self.enforce_sessions:
            moment = datetime.fromtimestamp(self.clock.now_msc() / 1000, UTC)
            if not self.calendar.is_open(symbol, moment):
                raise Refusal(rc.REQUEST_MARKET_CLOSED)
        return self._execute(
            login, symbol, action, volume, position_id=position_id, reason=reason, comment=comment
        )

    def _check_request(
        self, login: int, symbol: Symbol, action: int, volume: int, *, opening: bool
    ) -> None:
        """Volume within [VolumeMin, VolumeMax] and a multiple of VolumeStep (`10014`); the
        symbol's TradeMode: disabled (`10017`), close only (`10044`), long only (`10042`) or
        short only (`10043`) for what would open or grow a position."""
        mode = symbol.trade_mode
        if mode == TRADE_DISABLED:
            raise Refusal(rc.REQUEST_TRADE_DISABLED)
        if not symbol.volume_min <= volume <= symbol.volume_max or volume % symbol.volume_step:
            raise Refusal(rc.REQUEST_INVALID_VOLUME)
        if not opening:
            return
        if mode == TRADE_CLOSE_ONLY:
            raise Refusal(rc.REQUEST_CLOSE_ONLY)
        if mode == TRADE_LONG_ONLY and action == SELL:
            raise Refusal(rc.REQUEST_LONG_ONLY)
        if mode == TRADE_SHORT_ONLY and action == BUY:
            raise Refusal(rc.REQUEST_SHORT_ONLY)

    def _check_group_rules(
        self, login: int, symbol: Symbol, action: int, position_id: int, *, opening: bool
    ) -> None:
        """The group's `LimitPositions` (`10040`) for what opens a position; in hedging accounts
        its `TradeFlags`: HEDGE_PROHIBIT (`10046`) refuses opening against an open position of
        the other direction, FIFO_CLOSE (`10045`) closing a position while an older one of the
        same symbol and direction is open."""
        group = self.group(login)
        held = [p for p in self.positions_of(login) if p.symbol == symbol.name]
        limit = int(str(group.get("LimitPositions", 0)))
        new_position = opening and (self.hedging(login) or not held)
        if limit and new_position and len(self.positions_of(login)) >= limit:
            raise Refusal(rc.REQUEST_LIMIT_POSITIONS)
        if not self.hedging(login):
            return
        flags = int(str(group.get("TradeFlags", 0)))
        if flags & TRADEFLAGS_HEDGE_PROHIBIT and opening:
            if any(p.action != action for p in held):
                raise Refusal(rc.REQUEST_HEDGE_PROHIBITED)
        if flags & TRADEFLAGS_FIFO_CLOSE and position_id:
            closing = self.books.positions.get(position_id)
            if closing is not None and any(
                p.action == closing.action and p.position < closing.position for p in held
            ):
                raise Refusal(rc.REQUEST_PROHIBITED_BY_FIFO)

    def _opens(
        self, login: int, symbol: Symbol, action: int, volume: int, position_id: int
    ) -> bool:
        """Whether a market request opens or grows a position (a netting reversal does)."""
        if self.hedging(login):
            return not position_id
        held = [p for p in self.positions_of(login) if p.symbol == symbol.name]
        return not any(p.action != action and p.volume >= volume for p in held)

    def _execute(
        self,
        login: int,
        symbol: Symbol,
        action: int,
        volume: int,
        *,
        position_id: int = 0,
        reason: int = REASON_DEALER,
        comment: str = "",
        fill_price: Decimal | None = None,
    ) -> list[Deal]:
        """Fill at the market with the dealer's markup, or at `fill_price` (a limit order the
        market reached); undone whole (`10019`) if what it opens does not fit the margin."""
        user = self.user(login)
        bid, ask = self.quote(symbol.name)
        markup = symbol.point * self.dealer_rule(user.group, symbol.name).markup_points
        price = (ask + markup if action == BUY else bid - markup).quantize(symbol.point)
        if fill_price is not None:
            price = fill_price
        order = self.books.new_ticket()
        before = self._snapshot(login)
        deals = self._fill(login, symbol, action, volume, price, order, position_id, reason)
        for deal in deals:
            deal.comment = comment[:31]
        opens = any(d.entry in (ENTRY_IN, ENTRY_INOUT) for d in deals)
        if opens and not self._fits_initial_margin(login):
            self._restore(before)
            raise Refusal(rc.REQUEST_NO_MONEY)
        self._filled_order(
            order, login, symbol, action, volume, price, deals[-1].position_id, reason, comment
        )
        return deals

    def _fill(
        self,
        login: int,
        symbol: Symbol,
        action: int,
        volume: int,
        price: Decimal,
        order: int,
        position_id: int,
        reason: int,
    ) -> list[Deal]:
        """Book the deals of a fill (with their profit realised), then their commissions."""
        if self.hedging(login):
            deals = self._hedging_fill(
                login, symbol, action, volume, price, order, position_id, reason
            )
        else:
            deals = self._netting_fill(login, symbol, action, volume, price, order, reason)
        for deal in deals:
            self._charge_commissions(deal, symbol)
        return deals

    # -- pending orders and stops ----------------------------------------------------------

    def place_pending(
        self,
        login: int,
        name: str,
        order_type: int,
        volume: int,
        price: Decimal,
        *,
        trigger: Decimal = Decimal(0),
        comment: str = "",
    ) -> Order:
        """Place a limit, stop or stop-limit order on the right side of the market. Checked
        like a market request that opens (volume limits, trade mode); where the symbol charges
        margin for its type, the order must fit the free margin (`10019`)."""
        self.user(login)
        symbol = self.symbol_for(login, name)
        if order_type not in PENDING_TYPES or price <= 0:
            raise Refusal(rc.REQUEST_INVALID)
        action = BUY if order_type in (BUY_LIMIT, BUY_STOP, BUY_STOP_LIMIT) else SELL
        self._check_request(login, symbol, action, volume, opening=True)
        limit = int(str(self.group(login).get("LimitOrders", 0)))
        if limit and sum(1 for o in self.books.orders.values() if o.login == login) >= limit:
            raise Refusal(rc.REQUEST_LIMIT_ORDERS)
        bid, ask = self.quote(name)
        valid = {
            BUY_LIMIT: price < ask,
            SELL_LIMIT: price > bid,
            BUY_STOP: price > ask,
            SELL_STOP: price < bid,
            BUY_STOP_LIMIT: trigger > ask and price < trigger,
            SELL_STOP_LIMIT: 0 < trigger < bid and price > trigger,
        }[order_type]
        if not valid:
            raise Refusal(rc.REQUEST_INVALID_PRICE)
        order = Order(
            order=self.books.new_ticket(),
            login=login,
            symbol=symbol.name,
            type=order_type,
            volume_initial=volume,
            volume_current=volume,
            price_order=str(price.quantize(symbol.point)),
            price_trigger=str(trigger.quantize(symbol.point)),
            state=ORDER_PLACED,
            time_setup_msc=self.clock.now_msc(),
            comment=comment[:31],
        )
        self.books.orders[order.order] = order
        if not self._fits_initial_margin(login):
            del self.books.orders[order.order]
            raise Refusal(rc.REQUEST_NO_MONEY)
        return order

    def cancel_order(self, login: int, ticket: int, state: int = ORDER_CANCELED) -> Order:
        order = self.books.orders.get(ticket)
        if order is None or order.login != login:
            raise Refusal(rc.ERR_NOTFOUND)
        del self.books.orders[ticket]
        return self._done(order, state)

    def _done(self, order: Order, state: int) -> Order:
        """A pending order that left the book goes to the history in its final state."""
        order.state, order.time_done_msc = state, self.clock.now_msc()
        self.books.history_orders.append(order)
        return order

    def set_stops(self, login: int, position_id: int, sl: Decimal, tp: Decimal) -> Position:
        """Stop loss and take profit of a position (0 removes one); they must be on the losing
        and the winning side of the current close price."""
        position = self.books.positions.get(position_id)
        if position is None or position.login != login:
            raise Refusal(rc.REQUEST_POSITION_CLOSED)
        bid, ask = self.quote(position.symbol)
        close = bid if position.action == BUY else ask
        direction = sign(position.action)
        if (sl and (sl - close) * direction >= 0) or (tp and (tp - close) * direction <= 0):
            raise Refusal(rc.REQUEST_INVALID_STOPS)
        position.price_sl, position.price_tp = str(sl), str(tp)
        return position

    def trigger(self, name: str) -> list[Deal]:
        """Execute what the new quote of `name` reaches: pending orders, then SL and TP."""
        bid, ask = self.quote(name)
        deals: list[Deal] = []
        for order in [o for o in self.books.orders.values() if o.symbol == name]:
            deals += self._trigger_order(order, bid, ask)
        for position in [p for p in self.positions_of_symbol(name)]:
            deals += self._trigger_stops(position, bid, ask)
        return deals

    def positions_of_symbol(self, name: str) -> list[Position]:
        return [p for p in self.books.positions.values() if p.symbol == name]

    def _trigger_order(self, order: Order, bid: Decimal, ask: Decimal) -> list[Deal]:
        price, trigger = Decimal(order.price_order), Decimal(order.price_trigger)
        kind = order.type
        if kind == BUY_STOP_LIMIT and ask >= trigger:
            order.type = BUY_LIMIT  # the stop is reached: from now on a limit order
        elif kind == SELL_STOP_LIMIT and bid <= trigger:
            order.type = SELL_LIMIT
        reached = {
            BUY_LIMIT: ask <= price,
            SELL_LIMIT: bid >= price,
            BUY_STOP: ask >= price,
            SELL_STOP: bid <= price,
        }.get(order.type, False)
        if not reached:
            return []
        action = BUY if order.type in (BUY_LIMIT, BUY_STOP) else SELL
        limit = order.type in (BUY_LIMIT, SELL_LIMIT)
        # The order no longer waits: its own margin is not charged beside its fill's.
        del self.books.orders[order.order]
        try:
            deals = self._execute(
                order.login,
                self.symbol_for(order.login, order.symbol),
                action,
                order.volume_current,
                reason=REASON_CLIENT,
                comment=order.comment,
                fill_price=price if limit else None,
            )
        except Refusal:
            self._done(order, ORDER_REJECTED)
            return []
        # The fill was booked under a fresh order ticket: keep the pending order's own.
        filled = self.books.history_orders.pop()
        self._done(order, ORDER_FILLED)
        order.volume_current, order.position_id = 0, filled.position_id
        return deals

    def _trigger_stops(self, position: Position, bid: Decimal, ask: Decimal) -> list[Deal]:
        close = bid if position.action == BUY else ask
        direction = sign(position.action)
        sl, tp = Decimal(position.price_sl), Decimal(position.price_tp)
        if sl and (close - sl) * direction <= 0:
            reason = REASON_SL
        elif tp and (close - tp) * direction >= 0:
            reason = REASON_TP
        else:
            return []
        closing = SELL if position.action == BUY else BUY
        return self._execute(
            position.login,
            self.symbol_for(position.login, position.symbol),
            closing,
            position.volume,
            position_id=position.position,
            reason=reason,
        )

    def _snapshot(self, login: int) -> tuple[list[User], dict[int, Position], int]:
        """What a fill may change: the account, its agent's account (agent commissions) and
        positions, and the deals booked so far."""
        users = [replace(self.user(login))]
        agent = self.books.users.get(users[0].agent)
        if agent is not None:
            users.append(replace(agent))
        positions = {p.position: replace(p) for p in self.books.positions_of(login)}
        return users, positions, len(self.books.deals)

    def _restore(self, snapshot: tuple[list[User], dict[int, Position], int]) -> None:
        """Undo a fill that the account cannot carry: nothing of it stays in the books."""
        users, positions, deal_count = snapshot
        for user in users:
            self.books.users[user.login] = user
        login = users[0].login
        for ticket in [p.position for p in self.books.positions_of(login)]:
            del self.books.positions[ticket]
        self.books.positions.update(positions)
        self.books.drop_deals_after(deal_count)

    def _netting_fill(
        self,
        login: int,
        symbol: Symbol,
        action: int,
        volume: int,
        price: Decimal,
        order: int,
        reason: int,
    ) -> list[Deal]:
        position = next((p for p in self.positions_of(login) if p.symbol == symbol.name), None)
        if position is None:
            position = self._open(login, symbol, action, volume, price, order, reason)
            return [self._deal(symbol, action, ENTRY_IN, volume, 0, price, position, order, reason)]
        if position.action == action:
            total = position.volume + volume
            weighted = Decimal(position.price_open) * position.volume + price * volume
            position.price_open = str((weighted / total).quantize(symbol.point / 1000))
            position.volume = total
            position.time_update_msc = self.clock.now_msc()
            return [self._deal(symbol, action, ENTRY_IN, volume, 0, price, position, order, reason)]
        closed = min(volume, position.volume)
        entry = ENTRY_INOUT if volume > position.volume else ENTRY_OUT
        deal = self._deal(symbol, action, entry, volume, closed, price, position, order, reason)
        self._realise(deal, position, closed, price)
        if volume > position.volume:  # reversal: same position id, new direction and price
            position.action, position.volume = action, volume - position.volume
            position.price_open, position.storage = str(price), "0"
            position.time_update_msc = self.clock.now_msc()
        else:
            self._reduce(position, volume)
        return [deal]

    def _hedging_fill(
        self,
        login: int,
        symbol: Symbol,
        action: int,
        volume: int,
        price: Decimal,
        order: int,
        position_id: int,
        reason: int,
    ) -> list[Deal]:
        if not position_id:
            position = self._open(login, symbol, action, volume, price, order, reason)
            return [self._deal(symbol, action, ENTRY_IN, volume, 0, price, position, order, reason)]
        closing = self.books.positions.get(position_id)
        if closing is None or closing.login != login or closing.symbol != symbol.name:
            raise Refusal(rc.REQUEST_POSITION_CLOSED)
        position = closing
        if position.action == action or volume > position.volume:
            raise Refusal(rc.REQUEST_INVALID_CLOSE_VOLUME)
        deal = self._deal(symbol, action, ENTRY_OUT, volume, volume, price, position, order, reason)
        self._realise(deal, position, volume, price)
        self._reduce(position, volume)
        return [deal]

    def close_by(self, login: int, position_id: int, by_id: int) -> list[Deal]:
        """Close two opposite positions of one symbol against each other (hedging only).

        No market price is used: the deal on `position_id` closes at the other position's open
        price and carries the pair's whole profit; the deal on `by_id` closes at its own open price
        with zero profit (how MT5 splits it is unverified; the pair's total is what matters).
        Both deals and the one close-by history order (type 8) name the opposite position in
        `PositionByID`.
        """
        first, second = self.books.positions.get(position_id), self.books.positions.get(by_id)
        if first is None or second is None or {first.login, second.login} != {login}:
            raise Refusal(rc.REQUEST_POSITION_CLOSED)
        if first.symbol != second.symbol or first.action == second.action:
            raise Refusal(rc.REQUEST_INVALID)
        symbol = self.symbol_for(login, first.symbol)
        volume = min(first.volume, second.volume)
        order = self.books.new_ticket()
        by_price = Decimal(second.price_open)
        deals = []
        for position, opposite in ((first, second), (second, first)):
            action = SELL if position.action == BUY else BUY
            deal = self._deal(
                symbol,
                action,
                ENTRY_OUT_BY,
                volume,
                volume,
                by_price,
                position,
                order,
                REASON_CLIENT,
            )
            deal.position_by_id = opposite.position
            close_at = by_price if position is first else Decimal(position.price_open)
            self._realise(deal, position, volume, close_at)
            deals.append(deal)
        for deal in deals:
            self._charge_commissions(deal, symbol)
        self._reduce(first, volume)
        self._reduce(second, volume)
        self._filled_order(
            order,
            login,
            symbol,
            ORDER_CLOSE_BY,
            volume,
            by_price,
            first.position,
            REASON_CLIENT,
            position_by_id=second.position,
        )
        return deals

    def _filled_order(
        self,
        order: int,
        login: int,
        symbol: Symbol,
        order_type: int,
        volume: int,
        price: Decimal,
        position_id: int,
        reason: int,
        comment: str = "",
        *,
        position_by_id: int = 0,
    ) -> None:
        """The history order of a fill: placed and filled at once."""
        stamp = self.clock.now_msc()
        self.books.history_orders.append(
            Order(
                order=order,
                login=login,
                symbol=symbol.name,
                type=order_type,
                volume_initial=volume,
                volume_current=0,
                price_order=str(price),
                state=ORDER_FILLED,
                time_setup_msc=stamp,
                time_done_msc=stamp,
                position_id=position_id,
                reason=reason,
                comment=comment[:31],
                position_by_id=position_by_id,
            )
        )

    def _open(
        self,
        login: int,
        symbol: Symbol,
        action: int,
        volume: int,
        price: Decimal,
        order: int,
        reason: int,
    ) -> Position:
        stamp = self.clock.now_msc()
        position = Position(
            position=order,
            login=login,
            symbol=symbol.name,
            action=action,
            volume=volume,
            price_open=str(price),
            time_create_msc=stamp,
            time_update_msc=stamp,
            reason=reason,
        )
        self.books.positions[order] = position
        return position

    def _reduce(self, position: Position, volume: int) -> None:
        remaining = position.volume - volume
        if remaining == 0:
            del self.books.positions[position.position]
            return
        # The position keeps the swap not yet realised on the volume still open.
        storage = Decimal(position.storage)
        position.storage = str(self.money(position.login, storage * remaining / position.volume))
        position.volume = remaining
        position.time_update_msc = self.clock.now_msc()

    def _deal(
        self,
        symbol: Symbol,
        action: int,
        entry: int,
        volume: int,
        closed: int,
        price: Decimal,
        position: Position,
        order: int,
        reason: int,
    ) -> Deal:
        login = position.login
        bid, ask = self.quote(symbol.name)
        deal = Deal(
            deal=self.books.new_ticket(),
            login=login,
            action=action,
            profit="0.00",
            comment="",
            time_msc=self.clock.now_msc(),
            entry=entry,
            symbol=symbol.name,
            volume=volume,
            volume_closed=closed,
            price=str(price),
            price_position=position.price_open,
            position_id=position.position,
            order=order,
            contract_size=str(symbol.contract_size),
            rate_profit=str(self.rate(symbol.profit, self.currency(login))),
            rate_margin=str(self.rate(symbol.margin, self.currency(login), for_margin=True)),
            reason=reason,
            market_bid=str(bid),
            market_ask=str(ask),
            digits=symbol.digits,
        )
        rule = self.dealer_rule(self.user(login).group, symbol.name)
        if rule.a_book:
            deal.gateway = rule.gateway
            deal.price_gateway = str(ask if action == BUY else bid)
        self.books.add_deal(deal)
        return deal

    def _realise(self, deal: Deal, position: Position, closed: int, close_price: Decimal) -> None:
        """Book the profit and the swap of the `closed` part of `position` on `deal`; a loss
        converts at the higher rate, a gain at the lower (`RateProfit` is the one used)."""
        symbol = self.symbol_for(position.login, position.symbol)
        raw = self.raw_profit(
            symbol, position.action, closed, Decimal(position.price_open), close_price
        )
        rate = self.rate(symbol.profit, self.currency(deal.login), loss=raw < 0)
        profit = self.money(deal.login, raw * rate)
        storage = self.money(deal.login, Decimal(position.storage) * closed / position.volume)
        deal.rate_profit = str(rate)
        deal.profit_raw = str(raw)
        deal.profit = str(profit)
        deal.storage = str(storage)
        deal.price_position = position.price_open
        self._credit(deal.login, profit + storage)

    def _credit(self, login: int, amount: Decimal) -> None:
        user = self.user(login)
        user.balance = str(self.money(login, Decimal(user.balance) + amount))

    # -- commissions -----------------------------------------------------------------------

    def _charge_commissions(self, deal: Deal, symbol: Symbol) -> None:
        """Apply the group's commission rules to a trade deal whose profit is known.

        Standard commissions (Mode 0) land on the deal's `Commission` (instant) or accumulate
        on the user for the end of the day / month; fees (Mode 2) on the deal's `Fee` (or with
        the commissions that accumulate); agent commissions (Mode 1) are not the client's to
        pay: they go to the account in `User.agent`, at once as a DEAL_AGENT deal or
        accumulated for its daily / monthly payout.
        """
        user = self.user(deal.login)
        commission = fee = Decimal(0)
        for rule in self.group(deal.login).get("Commissions") or []:
            amount = self._rule_amount(rule, deal, symbol)
            if not amount:
                continue
            mode = int(rule.get("Mode", COMM_STANDARD))
            charge = int(rule.get("ChargeMode", CHARGE_INSTANT))
            if mode == COMM_AGENT:
                self._pay_agent(user, amount, charge, deal)
            elif charge == CHARGE_INSTANT and mode == COMM_FEE:
                fee -= amount
            elif charge == CHARGE_INSTANT:
                commission -= amount
            elif charge == CHARGE_DAILY:
                user.commission_daily = str(Decimal(user.commission_daily) - amount)
            else:
                user.commission_monthly = str(Decimal(user.commission_monthly) - amount)
        deal.commission = str(self.money(deal.login, commission))
        deal.fee = str(self.money(deal.login, fee))
        self._credit(deal.login, commission + fee)

    def _pay_agent(self, client: User, amount: Decimal, charge: int, deal: Deal) -> None:
        """Credit an agent commission (in the client's currency) to the client's agent."""
        agent = self.books.users.get(client.agent)
        if agent is None:
            return
        paid = self.money(
            agent.login, amount * self.rate(self.currency(client.login), self.currency(agent.login))
        )
        if charge == CHARGE_DAILY:
            agent.commission_agent_daily = str(Decimal(agent.commission_agent_daily) + paid)
        elif charge == CHARGE_MONTHLY:
            agent.commission_agent_monthly = str(Decimal(agent.commission_agent_monthly) + paid)
        else:
            self._settle(agent, DEAL_AGENT, paid, f"agent #{deal.deal}", self.clock.now_msc())

    def _rule_amount(self, rule: dict[str, Any], deal: Deal, symbol: Symbol) -> Decimal:
        """What one commission rule charges for `deal`, in the deposit currency (positive;
        0 when the rule does not apply). The tier is the one whose [RangeFrom, RangeTo) holds
        the rule's range measure (RangeTo 0: no upper bound); its Minimal / Maximal clamp
        the amount in the tier's own currency."""
        if not fnmatch.fnmatchcase(symbol.path, str(rule.get("Path", "*"))):
            return Decimal(0)
        action_mode, profit_mode = int(rule.get("ActionMode", 0)), int(rule.get("ProfitMode", 0))
        if (action_mode == 1 and deal.action != BUY) or (action_mode == 2 and deal.action != SELL):
            return Decimal(0)
        profit = Decimal(deal.profit)
        if (profit_mode == 1 and profit <= 0) or (profit_mode == 2 and profit >= 0):
            return Decimal(0)
        volume = charged_volume(int(rule.get("EntryMode", ENTRY_MODE_ALL)), deal)
        if not volume:
            return Decimal(0)
        measure = self._range_measure(int(rule.get("RangeMode", RANGE_VOLUME)), deal, volume)
        tier = next((t for t in rule.get("Tiers") or [] if in_range(t, measure)), None)
        if tier is None:
            return Decimal(0)
        amount, currency = self._tier_amount(tier, deal, volume, symbol)
        if not amount:
            return Decimal(0)
        low, high = _number(tier, "Minimal"), _number(tier, "Maximal")
        amount = max(amount, low) if low else amount
        amount = min(amount, high) if high else amount
        return self.money(
            deal.login, amount * self.rate(currency, self.currency(deal.login), loss=True)
        )

    def _tier_amount(
        self, tier: dict[str, Any], deal: Deal, volume: int, symbol: Symbol
    ) -> tuple[Decimal, str]:
        """The tier's charge on `volume` of `deal`, and the currency it is in."""
        value = _number(tier, "Value")
        mode = int(tier.get("Mode", TIER_DEPOSIT))
        size = lots(volume)
        deposit = self.currency(deal.login)
        if mode == TIER_PERCENT:  # of the turnover, in the profit currency
            return size * symbol.contract_size * Decimal(deal.price) * value / 100, symbol.profit
        if mode == TIER_PERCENT_PROFIT:  # of the deal's profit, nothing on a loss
            return max(Decimal(deal.profit), Decimal(0)) * value / 100, deposit
        if mode == TIER_PIPS:  # points on the deal's volume, valued in the profit currency
            tick_size, tick_value = symbol.tick()
            return value * tick_value * symbol.point / tick_size * size, symbol.profit
        units = size if int(tier.get("Type", PER_LOT)) == PER_LOT else Decimal(1)
        currency = {
            TIER_BASE: symbol.base,
            TIER_PROFIT: symbol.profit,
            TIER_MARGIN: symbol.margin,
            TIER_CURRENCY: str(tier.get("Currency") or deposit),
        }.get(mode, deposit)
        return value * units, currency

    def _range_measure(self, range_mode: int, deal: Deal, volume: int) -> Decimal:
        """What a rule's tiers range over: the charged volume in lots, the deal's value or
        profit, or the account's turnover (money in its currency, or lots) this server month,
        this deal included."""
        if range_mode == RANGE_VOLUME:
            return lots(volume)
        if range_mode == RANGE_VALUE:
            return turnover(deal)
        if range_mode == RANGE_PROFIT:
            return Decimal(deal.profit)
        month = self.clock.server_date(deal.time_msc).replace(day=1)
        this_month = [
            d
            for d in self.books.deals_of(deal.login)
            if d.action in (BUY, SELL)
            and self.clock.server_date(d.time_msc).replace(day=1) == month
        ]
        if range_mode == RANGE_TURNOVER_VOLUME:
            return sum((lots(d.volume) for d in this_month), Decimal(0))
        return sum((turnover(d) for d in this_month), Decimal(0))

    def _settle(self, user: User, action: int, amount: Decimal, comment: str, stamp: int) -> Deal:
        """Book a balance-type deal of `amount` on `user` (a commission charged or paid)."""
        deal = Deal(
            deal=self.books.new_ticket(),
            login=user.login,
            action=action,
            profit=str(self.money(user.login, amount)),
            comment=comment[:31],
            time_msc=stamp,
        )
        self.books.add_deal(deal)
        self._credit(user.login, amount)
        return deal

    # -- end of day, rollover and stop-out -------------------------------------------------

    def end_of_day(self, *, month_end: bool = False, stamp: int | None = None) -> list[Deal]:
        """Charge each account's accumulated daily commission (DEAL_COMMISSION_DAILY) and pay
        each agent its daily commissions (DEAL_AGENT_DAILY); with `month_end`, the monthly
        ones too (9 / 11). Then the stop-outs the charges caused."""
        stamp = self.clock.now_msc() if stamp is None else stamp
        accruals = DAILY_ACCRUALS + (MONTHLY_ACCRUALS if month_end else ())
        deals = []
        for user in list(self.books.users.values()):
            for field, action, comment in accruals:
                due = Decimal(getattr(user, field))
                if due:
                    setattr(user, field, "0")
                    deals.append(self._settle(user, action, due, comment, stamp))
        return deals + self._stop_outs({d.login for d in deals})

    def rollover(self, weekday: int) -> list[Deal]:
        """One night's swap (three on a symbol's Swap3Day) on every open position of a symbol
        that traded on `weekday` (MT5 numbering, Sunday 0), then the stop-outs it caused."""
        traded_on = (weekday + 6) % 7  # Monday 0
        charged = set()
        for position in list(self.books.positions.values()):
            symbol = self.symbol_for(position.login, position.symbol)
            if not trades_on(symbol, traded_on):
                continue
            nights = 3 if weekday == symbol.swap_3day else 1
            swap = symbol.swap_long if position.action == BUY else symbol.swap_short
            bid, ask = self.quote(symbol.name)
            if symbol.swap_mode == SWAP_INTEREST_CURRENT:
                price = bid if position.action == BUY else ask
                raw = lots(position.volume) * symbol.contract_size * price * swap / 100 / 360
            else:
                raw = lots(position.volume) * swap * symbol.point * symbol.contract_size
            amount = self.to_deposit(position.login, raw * nights, symbol.profit)
            position.storage = str(self.money(position.login, Decimal(position.storage) + amount))
            charged.add(position.login)
        return self._stop_outs(charged)

    def roll_over_if_due(self) -> list[Deal]:
        """Run every server-time end of day since `Books.rolled_over_to` (the server date the
        last one led into): for each day that ended, its daily commissions (monthly ones and
        agent payouts when it was a month's last day) stamped at the midnight that ended it,
        and its night's swaps. The first call only notes today. Returns the deals booked."""
        today = self.clock.server_date(self.clock.now_msc())
        if not self.books.rolled_over_to:
            self.books.rolled_over_to = today.isoformat()
            return []
        deals: list[Deal] = []
        day = date.fromisoformat(self.books.rolled_over_to)
        while day < today:
            following = day + timedelta(days=1)
            midnight = datetime.combine(following, datetime.min.time(), UTC)
            stamp = self.clock.to_utc(int(midnight.timestamp() * 1000))
            deals += self.end_of_day(month_end=following.day == 1, stamp=stamp)
            deals += self.rollover(mt5_weekday(day))
            day = following
            self.books.rolled_over_to = day.isoformat()
        return deals

    def _stop_outs(self, logins: Iterable[int]) -> list[Deal]:
        return [deal for login in sorted(logins) for deal in self.stop_out(login)]

    def stop_out(self, login: int) -> list[Deal]:
        """Close the most losing positions, one at a time, while the margin level is at or under
        the group's stop-out level (percent mode) or equity under it (money mode)."""
        group = self.group(login)
        level = Decimal(str(group["MarginStopOut"]))
        by_money = int(str(group.get("MarginSOMode", 0))) == 1
        deals: list[Deal] = []
        while True:
            state = self.account(login)
            if not state.margin or not self.positions_of(login):
                return deals
            breached = state.equity <= level if by_money else state.margin_level <= level
            if not breached:
                return deals
            worst = min(self.positions_of(login), key=self.floating_profit)
            closing = SELL if worst.action == BUY else BUY
            symbol = self.symbol_for(login, worst.symbol)
            bid, ask = self.quote(symbol.name)
            price = ask if closing == BUY else bid
            order = self.books.new_ticket()
            deals += self._fill(
                login, symbol, closing, worst.volume, price, order, worst.position, REASON_SO
            )


def charged_volume(entry_mode: int, deal: Deal) -> int:
    """The part of a deal a rule of `entry_mode` charges: all of it for in-and-out rules (a
    reversal too), the opening part for in-only rules, the closing part for out-only ones."""
    opened = deal.volume - deal.volume_closed
    if entry_mode == ENTRY_MODE_IN:
        return opened
    if entry_mode == ENTRY_MODE_OUT:
        return deal.volume_closed
    return deal.volume


def in_range(tier: dict[str, Any], measure: Decimal) -> bool:
    upper = _number(tier, "RangeTo")
    return _number(tier, "RangeFrom") <= measure and (not upper or measure < upper)


def turnover(deal: Deal) -> Decimal:
    """A trade deal's value in the deposit currency: lots x contract size x price x RateProfit."""
    return (
        lots(deal.volume)
        * Decimal(deal.contract_size)
        * Decimal(deal.price)
        * Decimal(deal.rate_profit)
    )


def counted_floating(floating: Decimal, group: dict[str, Any]) -> Decimal:
    """What of the floating profit free margin counts, by the group's `MarginFreeMode`: 0 none,
    1 all (the default), 2 a profit only, 3 a loss only (of the account's total)."""
    mode = int(str(group.get("MarginFreeMode", FREE_MARGIN_USE_PL)))
    if mode == FREE_MARGIN_NOT_USE_PL:
        return Decimal(0)
    if mode == FREE_MARGIN_PROFIT:
        return max(floating, Decimal(0))
    if mode == FREE_MARGIN_LOSS:
        return min(floating, Decimal(0))
    return floating


def average_open(legs: list[Position]) -> Decimal:
    volume = sum(p.volume for p in legs)
    return sum((Decimal(p.price_open) * p.volume for p in legs), Decimal(0)) / volume
