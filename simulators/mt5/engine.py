"""The trading engine: deals, positions, margin and equity as an MT5 trade server keeps them.

Volumes are integers in 1/10000 lot (the Web API's unit). Money is Decimal, rounded to the
group's currency digits whenever it lands on a deal or a balance.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
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
from simulators.mt5.feed import SessionCalendar
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
CHARGE_DAILY, CHARGE_INSTANT = 0, 2
DEAL_COMMISSION_DAILY = 8
PENDING_TYPES = {BUY_LIMIT, SELL_LIMIT, BUY_STOP, SELL_STOP, BUY_STOP_LIMIT, SELL_STOP_LIMIT}
NETTING, HEDGING = 0, 2
RATE_PLACES = Decimal("0.00000001")


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


class Engine:
    def __init__(self, books: Books, catalogue: dict[str, Symbol] | None = None) -> None:
        self.books = books
        self.catalogue = catalogue or CATALOGUE
        self.dealer_rules = list(DEFAULT_DEALER_RULES)
        # Refuse trades outside a symbol's session (`--sessions`); off by default so that a
        # test run on a Saturday still trades FX.
        self.enforce_sessions = False
        self.calendar = SessionCalendar()
        self.clock: Callable[[], int] = now_msc
        # Tick transactions for `tick/last?trans_id=`: a counter bumped by every quote change and,
        # per symbol, the transaction and time of its last change (not persisted: a restart
        # starts the count again, and a client's id from before it sees every symbol once).
        self.tick_serial = 0
        self.tick_changes: dict[str, tuple[int, int]] = {}

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

    def quote(self, name: str) -> tuple[Decimal, Decimal]:
        stored = self.books.quotes.get(name)
        if stored is not None:
            return Decimal(stored[0]), Decimal(stored[1])
        symbol = self.symbol(name)
        return symbol.bid, symbol.ask

    def set_quote(self, name: str, bid: Decimal, ask: Decimal) -> list[Deal]:
        """Move the market; pending orders and SL/TP it reaches execute. Returns their deals."""
        self.symbol(name)
        if ask < bid or bid <= 0:
            raise Refusal(rc.ERR_PARAMS)
        self.books.quotes[name] = [str(bid), str(ask)]
        self.tick_serial += 1
        self.tick_changes[name] = (self.tick_serial, self.clock())
        return self.trigger(name)

    def rate(self, source: str, target: str, *, for_margin: bool = False) -> Decimal:
        """Units of `target` per unit of `source`, from the quotes of a direct, inverse or USD
        cross pair. Profit converts at the bid (direct) / 1/ask (inverse), margin the other way."""
        if source == target:
            return Decimal(1)
        direct, inverse = source + target, target + source
        if direct in self.catalogue:
            bid, ask = self.quote(direct)
            return (ask if for_margin else bid).quantize(RATE_PLACES)
        if inverse in self.catalogue:
            bid, ask = self.quote(inverse)
            return (Decimal(1) / (bid if for_margin else ask)).quantize(RATE_PLACES)
        if "USD" in (source, target):
            raise Refusal(rc.ERR_NOTFOUND)
        return (
            self.rate(source, "USD", for_margin=for_margin)
            * self.rate("USD", target, for_margin=for_margin)
        ).quantize(RATE_PLACES)

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

    def currency(self, login: int) -> str:
        return str(self.group(login)["Currency"])

    def money(self, login: int, amount: Decimal) -> Decimal:
        digits = int(str(self.group(login)["CurrencyDigits"]))
        return amount.quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP)

    def positions_of(self, login: int) -> list[Position]:
        return [p for p in self.books.positions.values() if p.login == login]

    def floating_profit(self, position: Position) -> Decimal:
        """Profit if closed now (at the bid for buys, the ask for sells), in deposit currency."""
        symbol = self.symbol(position.symbol)
        bid, ask = self.quote(position.symbol)
        close = bid if position.action == BUY else ask
        raw = self.raw_profit(
            symbol, position.action, position.volume, Decimal(position.price_open), close
        )
        rate = self.rate(symbol.profit, self.currency(position.login))
        return self.money(position.login, raw * rate)

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

    def margin_for(self, symbol: Symbol, volume: int, price: Decimal, leverage: int) -> Decimal:
        """Margin in the symbol's margin currency, per calculation mode."""
        size = lots(volume)
        rate = symbol.margin_rate
        mode = symbol.calc_mode
        if mode == FOREX:
            return size * symbol.contract_size / leverage * rate
        if mode == FOREX_NO_LEVERAGE:
            return size * symbol.contract_size * rate
        if mode == FUTURES:
            return size * symbol.margin_initial * rate
        if mode in (CFD, EXCH_STOCKS):
            return size * symbol.contract_size * price * rate
        if mode == CFD_INDEX:
            tick_size, tick_value = symbol.tick()
            return size * symbol.contract_size * price * tick_value / tick_size * rate
        if mode == CFD_LEVERAGE:
            return size * symbol.contract_size * price / leverage * rate
        raise Refusal(rc.ERR_PARAMS)

    def margin(self, login: int) -> Decimal:
        user = self.user(login)
        hedging = int(str(self.group(login)["MarginMode"])) == HEDGING
        total = Decimal(0)
        for name in sorted({p.symbol for p in self.positions_of(login)}):
            legs = [p for p in self.positions_of(login) if p.symbol == name]
            total += self._symbol_margin(login, self.symbol(name), legs, user.leverage, hedging)
        return self.money(login, total)

    def _symbol_margin(
        self, login: int, symbol: Symbol, legs: list[Position], leverage: int, hedging: bool
    ) -> Decimal:
        bid, ask = self.quote(symbol.name)
        to_deposit = self.rate(symbol.margin, self.currency(login), for_margin=True)
        if not hedging:
            [position] = legs
            price = ask if position.action == BUY else bid
            return self.margin_for(symbol, position.volume, price, leverage) * to_deposit
        buys = [p for p in legs if p.action == BUY]
        sells = [p for p in legs if p.action == SELL]
        buy_volume, sell_volume = sum(p.volume for p in buys), sum(p.volume for p in sells)
        hedged = min(buy_volume, sell_volume)
        larger = buys if buy_volume >= sell_volume else sells
        uncovered = abs(buy_volume - sell_volume)
        margin = Decimal(0)
        if uncovered:
            margin += self.margin_for(symbol, uncovered, average_open(larger), leverage)
        if hedged:
            # The overlapped volume is charged at MarginHedged per contract (half by default).
            hedged_volume = int(Decimal(hedged) * symbol.hedged_units / symbol.contract_size)
            margin += self.margin_for(symbol, hedged_volume, average_open(legs), leverage)
        return margin * to_deposit

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
            margin_free=equity - margin,
            margin_level=level,
            leverage=user.leverage,
            digits=int(str(group["CurrencyDigits"])),
            activation=activation,
        )

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
        fill_price: Decimal | None = None,
    ) -> list[Deal]:
        """Execute a market order at the current quote (buy at the ask, sell at the bid), or at
        `fill_price` for a limit order that the market reached."""
        user = self.user(login)
        symbol = self.symbol(name)
        if action not in (BUY, SELL) or volume <= 0:
            raise Refusal(rc.REQUEST_INVALID_VOLUME if volume <= 0 else rc.ERR_PARAMS)
        if self.enforce_sessions:
            moment = datetime.fromtimestamp(self.clock() / 1000, UTC)
            if not self.calendar.is_open(symbol, moment):
                raise Refusal(rc.REQUEST_MARKET_CLOSED)
        bid, ask = self.quote(name)
        markup = symbol.point * self.dealer_rule(user.group, name).markup_points
        price = (ask + markup if action == BUY else bid - markup).quantize(symbol.point)
        if fill_price is not None:
            price = fill_price
        order = self.books.new_ticket()
        hedging = int(str(self.books.groups[user.group]["MarginMode"])) == HEDGING
        before = self._snapshot(login)
        if hedging:
            deals = self._hedging_fill(
                login, symbol, action, volume, price, order, position_id, reason
            )
        else:
            deals = self._netting_fill(login, symbol, action, volume, price, order, reason)
        for deal in deals:
            deal.comment = comment[:31]
        opens = any(d.entry in (ENTRY_IN, ENTRY_INOUT) for d in deals)
        if opens and self.account(login).margin_free < 0:
            self._restore(login, before)
            raise Refusal(rc.REQUEST_NO_MONEY)
        stamp = now_msc()
        self.books.history_orders.append(
            Order(
                order=order,
                login=login,
                symbol=name,
                type=action,
                volume_initial=volume,
                volume_current=0,
                price_order=str(price),
                state=ORDER_FILLED,
                time_setup_msc=stamp,
                time_done_msc=stamp,
                position_id=deals[-1].position_id,
                reason=reason,
                comment=comment[:31],
            )
        )
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
        """Place a limit, stop or stop-limit order on the right side of the market."""
        self.user(login)
        symbol = self.symbol(name)
        if order_type not in PENDING_TYPES or volume <= 0 or price <= 0:
            raise Refusal(rc.REQUEST_INVALID)
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
            time_setup_msc=now_msc(),
            comment=comment[:31],
        )
        self.books.orders[order.order] = order
        return order

    def cancel_order(self, login: int, ticket: int, state: int = ORDER_CANCELED) -> Order:
        order = self.books.orders.get(ticket)
        if order is None or order.login != login:
            raise Refusal(rc.ERR_NOTFOUND)
        del self.books.orders[ticket]
        order.state, order.time_done_msc = state, now_msc()
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
        try:
            deals = self.market(
                order.login,
                order.symbol,
                action,
                order.volume_current,
                reason=REASON_CLIENT,
                comment=order.comment,
                fill_price=price if limit else None,
            )
        except Refusal:
            self.cancel_order(order.login, order.order, ORDER_REJECTED)
            return []
        # The fill was booked under a fresh order ticket: keep the pending order's own.
        filled = self.books.history_orders.pop()
        self.cancel_order(order.login, order.order, ORDER_FILLED)
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
        return self.market(
            position.login,
            position.symbol,
            closing,
            position.volume,
            position_id=position.position,
            reason=reason,
        )

    def _snapshot(self, login: int) -> tuple[User, dict[int, Position], int]:
        positions = {k: replace(v) for k, v in self.books.positions.items() if v.login == login}
        return replace(self.user(login)), positions, len(self.books.deals)

    def _restore(self, login: int, snapshot: tuple[User, dict[int, Position], int]) -> None:
        """Undo a fill that the account cannot carry: nothing of it stays in the books."""
        user, positions, deal_count = snapshot
        self.books.users[login] = user
        for ticket in [k for k, v in self.books.positions.items() if v.login == login]:
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
            return [
                self._deal(
                    login, symbol, action, ENTRY_IN, volume, 0, price, position, order, reason
                )
            ]
        if position.action == action:
            total = position.volume + volume
            weighted = Decimal(position.price_open) * position.volume + price * volume
            position.price_open = str((weighted / total).quantize(symbol.point / 1000))
            position.volume = total
            position.time_update_msc = now_msc()
            return [
                self._deal(
                    login, symbol, action, ENTRY_IN, volume, 0, price, position, order, reason
                )
            ]
        closed = min(volume, position.volume)
        entry = ENTRY_INOUT if volume > position.volume else ENTRY_OUT
        deal = self._deal(
            login, symbol, action, entry, volume, closed, price, position, order, reason
        )
        self._realise(deal, position, closed, price)
        if volume > position.volume:  # reversal: same position id, new direction and price
            position.action, position.volume = action, volume - position.volume
            position.price_open, position.storage = str(price), "0"
            position.time_update_msc = now_msc()
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
            return [
                self._deal(
                    login, symbol, action, ENTRY_IN, volume, 0, price, position, order, reason
                )
            ]
        closing = self.books.positions.get(position_id)
        if closing is None or closing.login != login or closing.symbol != symbol.name:
            raise Refusal(rc.REQUEST_POSITION_CLOSED)
        position = closing
        if position.action == action or volume > position.volume:
            raise Refusal(rc.REQUEST_INVALID_CLOSE_VOLUME)
        deal = self._deal(
            login, symbol, action, ENTRY_OUT, volume, volume, price, position, order, reason
        )
        self._realise(deal, position, volume, price)
        self._reduce(position, volume)
        return [deal]

    def close_by(self, login: int, position_id: int, by_id: int) -> list[Deal]:
        """Close two opposite positions of one symbol against each other (hedging only).

        No market price is used: the deal on `position_id` closes at the other position's open
        price and carries the pair's whole profit; the deal on `by_id` closes at its own open price
        with zero profit (how MT5 splits it is unverified; the pair's total is what matters).
        """
        first, second = self.books.positions.get(position_id), self.books.positions.get(by_id)
        if first is None or second is None or {first.login, second.login} != {login}:
            raise Refusal(rc.REQUEST_POSITION_CLOSED)
        if first.symbol != second.symbol or first.action == second.action:
            raise Refusal(rc.REQUEST_INVALID)
        symbol = self.symbol(first.symbol)
        volume = min(first.volume, second.volume)
        order = self.books.new_ticket()
        by_price = Decimal(second.price_open)
        deals = []
        for position, price in ((first, by_price), (second, by_price)):
            action = SELL if position.action == BUY else BUY
            deal = self._deal(
                login,
                symbol,
                action,
                ENTRY_OUT_BY,
                volume,
                volume,
                price,
                position,
                order,
                REASON_CLIENT,
            )
            close_at = by_price if position is first else Decimal(position.price_open)
            self._realise(deal, position, volume, close_at)
            deals.append(deal)
        self._reduce(first, volume)
        self._reduce(second, volume)
        return deals

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
        stamp = now_msc()
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
        position.time_update_msc = now_msc()

    def _deal(
        self,
        login: int,
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
        bid, ask = self.quote(symbol.name)
        commission = self.commission(login, symbol, entry, volume, price)
        deal = Deal(
            deal=self.books.new_ticket(),
            login=login,
            action=action,
            profit="0.00",
            comment="",
            time_msc=now_msc(),
            entry=entry,
            symbol=symbol.name,
            volume=volume,
            volume_closed=closed,
            price=str(price),
            price_position=position.price_open,
            position_id=position.position,
            order=order,
            commission=str(commission),
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
        self._credit(login, commission)
        return deal

    def _realise(self, deal: Deal, position: Position, closed: int, close_price: Decimal) -> None:
        """Book the profit and the swap of the `closed` part of `position` on `deal`."""
        symbol = self.symbol(position.symbol)
        raw = self.raw_profit(
            symbol, position.action, closed, Decimal(position.price_open), close_price
        )
        profit = self.money(deal.login, raw * Decimal(deal.rate_profit))
        storage = self.money(deal.login, Decimal(position.storage) * closed / position.volume)
        deal.profit_raw = str(raw)
        deal.profit = str(profit)
        deal.storage = str(storage)
        deal.price_position = position.price_open
        self._credit(deal.login, profit + storage)

    def _credit(self, login: int, amount: Decimal) -> None:
        user = self.user(login)
        user.balance = str(self.money(login, Decimal(user.balance) + amount))

    def commission(
        self, login: int, symbol: Symbol, entry: int, volume: int, price: Decimal
    ) -> Decimal:
        """Instant commissions of the group's matching rules, as a negative amount for the deal.
        Daily ones (ChargeMode 0) accumulate on the user and are charged at the end of the day."""
        instant = self._commission(login, symbol, entry, volume, price, CHARGE_INSTANT)
        daily = self._commission(login, symbol, entry, volume, price, CHARGE_DAILY)
        if daily:
            user = self.user(login)
            user.commission_daily = str(Decimal(user.commission_daily) - daily)
        return -instant

    def _commission(
        self, login: int, symbol: Symbol, entry: int, volume: int, price: Decimal, charge: int
    ) -> Decimal:
        total = Decimal(0)
        for rule in self.group(login).get("Commissions") or []:
            if int(rule.get("ChargeMode", CHARGE_INSTANT)) != charge:
                continue
            if not fnmatch.fnmatchcase(symbol.path, str(rule["Path"])):
                continue
            entry_mode = int(rule.get("EntryMode", 0))
            if (entry_mode == 1 and entry != ENTRY_IN) or (entry_mode == 2 and entry == ENTRY_IN):
                continue
            tier = rule["Tiers"][0]
            value = Decimal(str(tier["Value"]))
            if int(tier["Mode"]) == 5:  # percent of turnover in deposit currency
                turnover = (
                    lots(volume)
                    * symbol.contract_size
                    * price
                    * self.rate(symbol.profit, self.currency(login))
                )
                total += turnover * value / 100
            elif int(tier["Type"]) == 1:  # per lot
                total += value * lots(volume)
            else:  # per deal
                total += value
        return self.money(login, total)

    # -- rollover and stop-out -------------------------------------------------------------

    def end_of_day(self) -> list[Deal]:
        """Charge each account's accumulated daily commission as a DEAL_COMMISSION_DAILY deal."""
        deals = []
        for user in self.books.users.values():
            due = Decimal(user.commission_daily)
            if not due:
                continue
            user.commission_daily = "0"
            deal = Deal(
                deal=self.books.new_ticket(),
                login=user.login,
                action=DEAL_COMMISSION_DAILY,
                profit=str(self.money(user.login, due)),
                comment="daily commission",
                time_msc=now_msc(),
            )
            self.books.add_deal(deal)
            self._credit(user.login, Decimal(deal.profit))
            deals.append(deal)
        return deals

    def rollover(self, weekday: int) -> None:
        """Charge (or pay) one night's swap on every open position; triple on the swap-3-day."""
        for position in list(self.books.positions.values()):
            symbol = self.symbol(position.symbol)
            nights = 3 if weekday == symbol.swap_3day else 1
            swap = symbol.swap_long if position.action == BUY else symbol.swap_short
            bid, ask = self.quote(symbol.name)
            if symbol.swap_mode == SWAP_INTEREST_CURRENT:
                price = bid if position.action == BUY else ask
                raw = lots(position.volume) * symbol.contract_size * price * swap / 100 / 360
            else:
                raw = lots(position.volume) * swap * symbol.point * symbol.contract_size
            amount = raw * nights * self.rate(symbol.profit, self.currency(position.login))
            position.storage = str(self.money(position.login, Decimal(position.storage) + amount))

    def stop_out(self, login: int) -> list[Deal]:
        """Close the most losing positions, one at a time, while the margin level is at or under
        the group's stop-out level (percent mode) or equity under it (money mode)."""
        group = self.group(login)
        level = Decimal(str(group["MarginStopOut"]))
        by_money = int(str(group.get("MarginSOMode", 0))) == 1
        deals: list[Deal] = []
        while True:
            state = self.account(login)
            if not state.margin:
                return deals
            breached = state.equity <= level if by_money else state.margin_level <= level
            if not breached:
                return deals
            worst = min(self.positions_of(login), key=self.floating_profit)
            closing = SELL if worst.action == BUY else BUY
            symbol = self.symbol(worst.symbol)
            hedging = int(str(group["MarginMode"])) == HEDGING
            order = self.books.new_ticket()
            bid, ask = self.quote(symbol.name)
            price = ask if closing == BUY else bid
            if hedging:
                deals += self._hedging_fill(
                    login, symbol, closing, worst.volume, price, order, worst.position, REASON_SO
                )
            else:
                deals += self._netting_fill(
                    login, symbol, closing, worst.volume, price, order, REASON_SO
                )


def average_open(legs: list[Position]) -> Decimal:
    volume = sum(p.volume for p in legs)
    return sum((Decimal(p.price_open) * p.volume for p in legs), Decimal(0)) / volume


def now_msc() -> int:
    return int(time.time() * 1000)
