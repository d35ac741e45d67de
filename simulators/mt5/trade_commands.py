"""Web API commands over the trading engine: positions, symbols, ticks, dealer requests.

Manager-initiated trades go through `dealer/send_request` (answers a request id) and
`dealer/get_request_result` (the outcome), as the asynchronous dealer interface does. The
request's `Action` codes are not in the reference; this simulator reads 200 as "execute at
market", 201 "place a pending order", 202 "set a position's SL/TP", 203 "cancel a pending
order" and 210 "close by" (an unverified reading, documented in docs/mt5-simulator.md).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from simulators.mt5 import retcodes as rc
from simulators.mt5.clock import ServerClock
from simulators.mt5.commands import (
    MAX_BATCH,
    Call,
    Commands,
    _int,
    _login,
    deal_record,
    group_matches,
    page,
)
from simulators.mt5.engine import BUY, SELL
from simulators.mt5.retcodes import Refusal, retcode_text
from simulators.mt5.state import Order, Position

MAX_HISTORY_TICKS = 100_000  # rows per `tick/history` answer (MT5: 16 MB), then 14

DEALER_MARKET, DEALER_PENDING, DEALER_SLTP, DEALER_CANCEL, DEALER_CLOSE_BY = 200, 201, 202, 203, 210


def _decimal(value: str | None) -> Decimal:
    try:
        parsed = Decimal(str(value))
    except ArithmeticError:
        raise Refusal(rc.ERR_PARAMS) from None
    if not parsed.is_finite():
        raise Refusal(rc.ERR_PARAMS)
    return parsed


def _server(clock: ServerClock, utc_msc: int) -> int:
    """Server-time milliseconds of a stamp; 0 (no time yet) stays 0."""
    return clock.to_server(utc_msc) if utc_msc else 0


def _done(order: int) -> dict[str, str]:
    return {"Retcode": retcode_text(rc.REQUEST_DONE), "Order": str(order)}


def position_record(commands: Commands, position: Position) -> dict[str, str]:
    engine = commands.engine
    symbol = engine.symbol(position.symbol)
    bid, ask = engine.quote(position.symbol)
    created = _server(commands.clock, position.time_create_msc)
    updated = _server(commands.clock, position.time_update_msc)
    return {
        "Position": str(position.position),
        "ExternalID": "",
        "Login": str(position.login),
        "Dealer": "0",
        "Symbol": position.symbol,
        "Action": str(position.action),
        "Digits": str(symbol.digits),
        "DigitsCurrency": "2",
        "Reason": str(position.reason),
        "ContractSize": str(symbol.contract_size),
        "TimeCreate": str(created // 1000),
        "TimeUpdate": str(updated // 1000),
        "TimeCreateMsc": str(created),
        "TimeUpdateMsc": str(updated),
        "PriceOpen": position.price_open,
        "PriceCurrent": str(bid if position.action == BUY else ask),
        "PriceSL": position.price_sl,
        "PriceTP": position.price_tp,
        "Volume": str(position.volume),
        "VolumeExt": str(position.volume * 10_000),
        "Profit": str(engine.floating_profit(position)),
        "Storage": position.storage,
        "RateProfit": str(engine.rate(symbol.profit, engine.currency(position.login))),
        "RateMargin": str(
            engine.rate(symbol.margin, engine.currency(position.login), for_margin=True)
        ),
        "ExpertID": "0",
        "Comment": "",
    }


def order_record(order: Order, digits: int, clock: ServerClock) -> dict[str, str]:
    setup, done = _server(clock, order.time_setup_msc), _server(clock, order.time_done_msc)
    return {
        "Order": str(order.order),
        "ExternalID": "",
        "Login": str(order.login),
        "Dealer": "0",
        "Symbol": order.symbol,
        "Digits": str(digits),
        "DigitsCurrency": "2",
        "State": str(order.state),
        "Reason": str(order.reason),
        "TimeSetup": str(setup // 1000),
        "TimeSetupMsc": str(setup),
        "TimeDone": str(done // 1000),
        "TimeDoneMsc": str(done),
        "TimeExpiration": "0",
        "Type": str(order.type),
        "TypeFill": "0",
        "TypeTime": "0",
        "PriceOrder": order.price_order,
        "PriceTrigger": order.price_trigger,
        "PriceSL": order.price_sl,
        "PriceTP": order.price_tp,
        "VolumeInitial": str(order.volume_initial),
        "VolumeInitialExt": str(order.volume_initial * 10_000),
        "VolumeCurrent": str(order.volume_current),
        "VolumeCurrentExt": str(order.volume_current * 10_000),
        "PositionID": str(order.position_id),
        "PositionByID": str(order.position_by_id),
        "Comment": order.comment,
    }


class TradeCommands:
    def __init__(self, commands: Commands) -> None:
        self.commands = commands
        self.engine = commands.engine

    def table(self) -> dict[str, Any]:
        return {
            "position/get": self.position_get,
            "position/get_total": self.position_get_total,
            "position/get_page": self.position_get_page,
            "position/get_batch": self.position_get_batch,
            "tick/last": self.tick_last,
            "tick/history": self.tick_history,
            "order/get": self.order_get,
            "order/get_total": self.order_get_total,
            "order/get_page": self.order_get_page,
            "order/get_batch": self.order_get_batch,
            "history/get": self.history_get,
            "history/get_total": self.history_get_total,
            "history/get_page": self.history_get_page,
            "history/get_batch": self.history_get_batch,
            "dealer/send_request": self.dealer_send_request,
            "dealer/get_request_result": self.dealer_get_request_result,
        }

    # -- positions -------------------------------------------------------------------------

    def _positions(self, login: int) -> list[Position]:
        self.engine.user(login)
        return sorted(self.engine.positions_of(login), key=lambda p: p.position)

    def position_get(self, call: Call) -> dict[str, Any]:
        symbol = call.required("symbol")
        for position in self._positions(_login(call)):
            if position.symbol == symbol:
                return {"answer": position_record(self.commands, position)}
        raise Refusal(rc.ERR_NOTFOUND)

    def position_get_total(self, call: Call) -> dict[str, Any]:
        return {"answer": {"total": str(len(self._positions(_login(call))))}}

    def position_get_page(self, call: Call) -> dict[str, Any]:
        positions = self._positions(_login(call))[page(call)]
        return {"answer": [position_record(self.commands, p) for p in positions]}

    def position_get_batch(self, call: Call) -> dict[str, Any]:
        chosen = [k for k in ("login", "group", "ticket") if call.params.get(k)]
        if len(chosen) != 1:
            raise Refusal(rc.ERR_PARAMS)
        positions = sorted(self.engine.books.positions.values(), key=lambda p: p.position)
        value = call.params[chosen[0]]
        if chosen == ["ticket"]:
            wanted = {_int(x) for x in value.split(",") if x.strip()}
            positions = [p for p in positions if p.position in wanted]
        elif chosen == ["login"]:
            logins = {_int(x) for x in value.split(",") if x.strip()}
            positions = [p for p in positions if p.login in logins]
        else:
            users = self.engine.books.users
            positions = [p for p in positions if group_matches(users[p.login].group, value)]
        symbols = call.params.get("symbol")
        if symbols:
            positions = [p for p in positions if p.symbol in symbols.split(",")]
        return {"answer": [position_record(self.commands, p) for p in positions[:MAX_BATCH]]}

    # -- orders (open) and history orders -------------------------------------------------

    def _render_orders(self, orders: list[Order]) -> dict[str, Any]:
        """Orders as records, at most MAX_BATCH of them."""
        clock = self.commands.clock
        return {
            "answer": [
                order_record(o, self.engine.symbol(o.symbol).digits, clock)
                for o in orders[:MAX_BATCH]
            ]
        }

    def _open_orders(self, login: int) -> list[Order]:
        self.engine.user(login)
        return sorted(
            (o for o in self.engine.books.orders.values() if o.login == login),
            key=lambda o: o.order,
        )

    def _history(self, call: Call, logins: set[int]) -> list[Order]:
        since, until = self.commands.window(call)
        return [
            o
            for o in self.engine.books.history_orders
            if o.login in logins and since <= o.time_setup_msc <= until
        ]

    def _page(self, call: Call, items: list[Order]) -> dict[str, Any]:
        return self._render_orders(items[page(call)])

    def _one(self, orders: list[Order], call: Call) -> dict[str, Any]:
        ticket = _int(call.required("ticket"))
        found = [o for o in orders if o.order == ticket]
        if not found:
            raise Refusal(rc.ERR_NOTFOUND)
        return {"answer": self._render_orders(found)["answer"][0]}

    def _selected_logins(self, call: Call) -> set[int] | None:
        """Logins named by `login=` or matched by `group=`; None when `ticket=` is used."""
        chosen = [k for k in ("login", "group", "ticket") if call.params.get(k)]
        if len(chosen) != 1:
            raise Refusal(rc.ERR_PARAMS)
        value = call.params[chosen[0]]
        if chosen == ["ticket"]:
            return None
        if chosen == ["login"]:
            return {_int(x) for x in value.split(",") if x.strip()}
        return {u.login for u in self.engine.books.users.values() if group_matches(u.group, value)}

    def order_get(self, call: Call) -> dict[str, Any]:
        return self._one(list(self.engine.books.orders.values()), call)

    def order_get_total(self, call: Call) -> dict[str, Any]:
        return {"answer": {"total": str(len(self._open_orders(_login(call))))}}

    def order_get_page(self, call: Call) -> dict[str, Any]:
        return self._page(call, self._open_orders(_login(call)))

    def order_get_batch(self, call: Call) -> dict[str, Any]:
        logins = self._selected_logins(call)
        orders = sorted(self.engine.books.orders.values(), key=lambda o: o.order)
        if logins is None:
            tickets = {_int(x) for x in call.params["ticket"].split(",") if x.strip()}
            return self._render_orders([o for o in orders if o.order in tickets])
        return self._render_orders([o for o in orders if o.login in logins])

    def history_get(self, call: Call) -> dict[str, Any]:
        return self._one(self.engine.books.history_orders, call)

    def history_get_total(self, call: Call) -> dict[str, Any]:
        return {"answer": {"total": str(len(self._history(call, {_login(call)})))}}

    def history_get_page(self, call: Call) -> dict[str, Any]:
        return self._page(call, self._history(call, {_login(call)}))

    def history_get_batch(self, call: Call) -> dict[str, Any]:
        logins = self._selected_logins(call)
        if logins is None:
            tickets = {_int(x) for x in call.params["ticket"].split(",") if x.strip()}
            found = [o for o in self.engine.books.history_orders if o.order in tickets]
            return self._render_orders(found)
        return self._render_orders(self._history(call, logins))

    # -- prices --------------------------------------------------------------------------

    def tick_last(self, call: Call) -> dict[str, Any]:
        """The last tick of each named symbol; with `trans_id` N > 0, only the symbols whose
        quote changed after transaction N. The answer's `trans_id` is the current transaction,
        to pass back on the next poll. An id the server never issued (one from before a
        restart) is treated as 0."""
        since = _int(call.params.get("trans_id", "0") or "0")
        if since < 0:
            raise Refusal(rc.ERR_PARAMS)
        current = self.engine.tick_serial
        if since > current:
            since = 0
        clock = self.commands.clock
        now = clock.now_msc()
        ticks = []
        for name in call.required("symbol").split(","):
            symbol = self.engine.symbol(name.strip())
            changed, utc = self.engine.tick_changes.get(symbol.name, (0, now))
            stamp = clock.to_server(utc)
            if since and changed <= since:
                continue
            bid, ask = self.engine.quote(symbol.name)
            ticks.append(
                {
                    "Symbol": symbol.name,
                    "Digits": str(symbol.digits),
                    "Datetime": str(stamp // 1000),
                    "DatetimeMsc": str(stamp),
                    "Bid": str(bid),
                    "Ask": str(ask),
                    "Last": str(self.engine.last(symbol.name)),
                    "Volume": "0",
                    "VolumeReal": "0",
                }
            )
        return {"trans_id": str(current), "answer": ticks}

    def tick_history(self, call: Call) -> dict[str, Any]:
        """`tick/history?symbol=&from=&to=&data=`: the ticks the symbol printed in the window
        (server-time seconds, inclusive), each an array of the `data` letters' values in their
        order: `d` time (server milliseconds), `b` bid, `a` ask (default `dba`). At most
        `MAX_HISTORY_TICKS` rows, the oldest, with `14 Operation has not been completed` when
        more match: the client asks again from the last row's time."""
        symbol = self.engine.symbol(call.required("symbol").strip())
        since, until = self.commands.window(call)
        letters = call.params.get("data") or "dba"
        if not letters or any(letter not in "dba" for letter in letters):
            raise Refusal(rc.ERR_PARAMS)
        ticks = self.engine.tape.between(symbol.name, since, until)
        complete = len(ticks) <= MAX_HISTORY_TICKS
        clock = self.commands.clock
        rows = []
        for stamp, bid, ask in ticks[:MAX_HISTORY_TICKS]:
            values = {
                "d": clock.to_server(stamp),
                # Numbers, as `chart/get` answers them (floats print a price's digits exactly).
                "b": float(Decimal(bid).scaleb(-symbol.digits)),
                "a": float(Decimal(ask).scaleb(-symbol.digits)),
            }
            rows.append([values[letter] for letter in letters])
        answer: dict[str, Any] = {"answer": rows}
        if not complete:
            answer["retcode"] = retcode_text(rc.INCOMPLETE)
        return answer

    # -- dealer requests -------------------------------------------------------------------

    def dealer_send_request(self, call: Call) -> dict[str, Any]:
        """Execute the request and keep its result under the next request id, in the books:
        ids never repeat and results outlive a restart."""
        body = call.body if isinstance(call.body, dict) else {}
        request = {k.lower(): str(v) for k, v in {**call.params, **body}.items()}
        try:
            result = self._execute(request)
        except Refusal as refusal:
            result = {"Retcode": retcode_text(refusal.code)}
        books = self.engine.books
        books.next_request += 1
        books.requests[books.next_request] = result
        self.commands.save()
        return {"answer": {"id": str(books.next_request)}}

    def _execute(self, request: dict[str, str]) -> dict[str, str]:
        action = _int(request.get("action"))
        login = _int(request.get("login"))
        self.engine.require_trading(login)
        if action == DEALER_MARKET:
            side = _int(request.get("type"))
            if side not in (BUY, SELL):
                raise Refusal(rc.REQUEST_INVALID)
            deals = self.engine.market(
                login,
                request.get("symbol", ""),
                side,
                _int(request.get("volume")),
                position_id=_int(request.get("position", "0")),
                comment=request.get("comment", ""),
            )
        elif action == DEALER_PENDING:
            order = self.engine.place_pending(
                login,
                request.get("symbol", ""),
                _int(request.get("type")),
                _int(request.get("volume")),
                _decimal(request.get("priceorder")),
                trigger=_decimal(request.get("pricetrigger", "0")),
                comment=request.get("comment", ""),
            )
            return _done(order.order)
        elif action == DEALER_SLTP:
            position = self.engine.set_stops(
                login,
                _int(request.get("position")),
                _decimal(request.get("pricesl", "0")),
                _decimal(request.get("pricetp", "0")),
            )
            return _done(position.position)
        elif action == DEALER_CANCEL:
            return _done(self.engine.cancel_order(login, _int(request.get("order"))).order)
        elif action == DEALER_CLOSE_BY:
            deals = self.engine.close_by(
                login, _int(request.get("position")), _int(request.get("positionby"))
            )
        else:
            raise Refusal(rc.REQUEST_INVALID)
        last = deals[-1]
        return {
            **_done(last.order),
            "Deal": str(deals[0].deal),
            "Volume": str(last.volume),
            "Price": last.price,
            "Bid": last.market_bid,
            "Ask": last.market_ask,
            "Deals": ",".join(str(d.deal) for d in deals),
        }

    def dealer_get_request_result(self, call: Call) -> dict[str, Any]:
        result = self.engine.books.requests.get(_int(call.required("id")))
        if result is None:
            raise Refusal(rc.ERR_NOTFOUND)
        return {"answer": {"result": result}}

    # -- simulator-only --------------------------------------------------------------------

    def set_quotes(self, quotes: dict[str, list[str]]) -> list[dict[str, str]]:
        """Move prices, `{symbol: [bid, ask]}` or `[bid, ask, last]` (executing the pending
        orders and stops they reach), then stop out every account the move pushed under its
        level. Returns every deal that caused; `3` for a malformed quote."""
        parsed = {}
        for name, prices in quotes.items():
            if not isinstance(prices, list) or len(prices) not in (2, 3):
                raise Refusal(rc.ERR_PARAMS)
            parsed[name] = [_decimal(p) for p in prices]
        stopped = []
        for name, (bid, ask, *last) in parsed.items():
            stopped += self.engine.set_quote(name, bid, ask, last[0] if last else None)
        for login in sorted({p.login for p in self.engine.books.positions.values()}):
            stopped += self.engine.stop_out(login)
        self.commands.save()
        return [deal_record(d, self.commands.clock) for d in stopped]

    def rollover(self, weekday: int) -> None:
        """The trading day ends: daily commissions are charged, swaps accrue for the night."""
        self.engine.end_of_day()
        self.engine.rollover(weekday)
        self.commands.save()
