"""Web API commands over the trading engine: positions, symbols, ticks, dealer requests.

Manager-initiated trades go through `dealer/send_request` (answers a request id) and
`dealer/get_request_result` (the outcome), as the asynchronous dealer interface does. The
request's `Action` codes are not in the reference; this simulator reads 200 as "execute at
market" and 210 as "close by" (an unverified reading, documented in docs/mt5-simulator.md).
"""

from __future__ import annotations

import itertools
import time
from decimal import Decimal
from typing import Any

from simulators.mt5 import retcodes as rc
from simulators.mt5.catalogue import Symbol
from simulators.mt5.commands import Call, Commands, _int, _login, deal_record, group_matches
from simulators.mt5.engine import BUY, SELL
from simulators.mt5.retcodes import Refusal, retcode_text
from simulators.mt5.state import Position

DEALER_MARKET, DEALER_CLOSE_BY = 200, 210


def position_record(commands: Commands, position: Position) -> dict[str, str]:
    engine = commands.engine
    symbol = engine.symbol(position.symbol)
    bid, ask = engine.quote(position.symbol)
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
        "TimeCreate": str(position.time_create_msc // 1000),
        "TimeUpdate": str(position.time_update_msc // 1000),
        "TimeCreateMsc": str(position.time_create_msc),
        "TimeUpdateMsc": str(position.time_update_msc),
        "PriceOpen": position.price_open,
        "PriceCurrent": str(bid if position.action == BUY else ask),
        "PriceSL": "0",
        "PriceTP": "0",
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


def symbol_record(symbol: Symbol) -> dict[str, str]:
    tick_size, tick_value = symbol.tick()
    return {
        "Symbol": symbol.name,
        "Path": symbol.path,
        "CurrencyBase": symbol.base,
        "CurrencyProfit": symbol.profit,
        "CurrencyMargin": symbol.margin,
        "Digits": str(symbol.digits),
        "TickSize": str(tick_size),
        "TickValue": str(tick_value),
        "ContractSize": str(symbol.contract_size),
        "CalcMode": str(symbol.calc_mode),
        "TradeMode": "4",
        "ExecMode": "2",
        "Spread": str(symbol.spread_points),
        "VolumeMin": "100",
        "VolumeMax": "1000000",
        "VolumeStep": "100",
        "MarginInitial": str(symbol.margin_initial),
        "MarginRateInitial": str(symbol.margin_rate),
        "MarginHedged": str(symbol.hedged_units),
        "SwapMode": str(symbol.swap_mode),
        "SwapLong": str(symbol.swap_long),
        "SwapShort": str(symbol.swap_short),
        "Swap3Day": str(symbol.swap_3day),
    }


class TradeCommands:
    def __init__(self, commands: Commands) -> None:
        self.commands = commands
        self.engine = commands.engine
        self.results: dict[int, dict[str, str]] = {}
        self._request_ids = itertools.count(1)

    def table(self) -> dict[str, Any]:
        return {
            "position/get": self.position_get,
            "position/get_total": self.position_get_total,
            "position/get_page": self.position_get_page,
            "position/get_batch": self.position_get_batch,
            "symbol/get": self.symbol_get,
            "symbol/total": lambda call: {"answer": {"total": str(len(self.engine.catalogue))}},
            "symbol/next": self.symbol_next,
            "tick/last": self.tick_last,
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
        positions = self._positions(_login(call))
        offset, total = _int(call.params.get("offset", "0")), _int(call.params.get("total", "0"))
        if offset < 0 or total < 0:
            raise Refusal(rc.ERR_PARAMS)
        page = positions[offset : offset + total]
        return {"answer": [position_record(self.commands, p) for p in page]}

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
        return {"answer": [position_record(self.commands, p) for p in positions]}

    # -- symbols and prices ----------------------------------------------------------------

    def symbol_get(self, call: Call) -> dict[str, Any]:
        return {"answer": symbol_record(self.engine.symbol(call.required("symbol")))}

    def symbol_next(self, call: Call) -> dict[str, Any]:
        index = _int(call.required("index"))
        symbols = list(self.engine.catalogue.values())
        if not 0 <= index < len(symbols):
            raise Refusal(rc.ERR_NOTFOUND)
        return {"answer": symbol_record(symbols[index])}

    def tick_last(self, call: Call) -> dict[str, Any]:
        now = int(time.time() * 1000)
        ticks = []
        for name in call.required("symbol").split(","):
            symbol = self.engine.symbol(name.strip())
            bid, ask = self.engine.quote(symbol.name)
            ticks.append(
                {
                    "Symbol": symbol.name,
                    "Digits": str(symbol.digits),
                    "Datetime": str(now // 1000),
                    "DatetimeMsc": str(now),
                    "Bid": str(bid),
                    "Ask": str(ask),
                    "Last": "0",
                    "Volume": "0",
                    "VolumeReal": "0",
                }
            )
        return {"trans_id": str(len(self.engine.books.deals)), "answer": ticks}

    # -- dealer requests -------------------------------------------------------------------

    def dealer_send_request(self, call: Call) -> dict[str, Any]:
        body = call.body if isinstance(call.body, dict) else {}
        request = {k.lower(): str(v) for k, v in {**call.params, **body}.items()}
        action = _int(request.get("action"))
        login = _int(request.get("login"))
        request_id = next(self._request_ids)
        try:
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
            elif action == DEALER_CLOSE_BY:
                deals = self.engine.close_by(
                    login, _int(request.get("position")), _int(request.get("positionby"))
                )
            else:
                raise Refusal(rc.REQUEST_INVALID)
        except Refusal as refusal:
            self.results[request_id] = {"Retcode": retcode_text(refusal.code)}
        else:
            self.commands.save()
            last = deals[-1]
            self.results[request_id] = {
                "Retcode": retcode_text(rc.REQUEST_DONE),
                "Deal": str(deals[0].deal),
                "Order": str(last.order),
                "Volume": str(last.volume),
                "Price": last.price,
                "Bid": last.market_bid,
                "Ask": last.market_ask,
                "Deals": ",".join(str(d.deal) for d in deals),
            }
        return {"answer": {"id": str(request_id)}}

    def dealer_get_request_result(self, call: Call) -> dict[str, Any]:
        result = self.results.get(_int(call.required("id")))
        if result is None:
            raise Refusal(rc.ERR_NOTFOUND)
        return {"answer": {"result": result}}

    # -- simulator-only --------------------------------------------------------------------

    def set_quotes(self, quotes: dict[str, list[str]]) -> list[dict[str, str]]:
        """Move prices, then stop out every account the move pushed under its level."""
        for name, (bid, ask) in quotes.items():
            self.engine.set_quote(name, Decimal(bid), Decimal(ask))
        stopped = []
        for login in sorted({p.login for p in self.engine.books.positions.values()}):
            stopped += [deal_record(d) for d in self.engine.stop_out(login)]
        self.commands.save()
        return stopped

    def rollover(self, weekday: int) -> None:
        self.engine.rollover(weekday)
        self.commands.save()
