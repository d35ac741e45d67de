"""Golden cases of the simulator's trading engine, computed by hand from the domain reference."""

from __future__ import annotations

from decimal import Decimal

import pytest

from simulators.mt5.engine import (
    BUY,
    BUY_LIMIT,
    BUY_STOP_LIMIT,
    ENTRY_IN,
    ENTRY_INOUT,
    ENTRY_OUT,
    ENTRY_OUT_BY,
    ORDER_FILLED,
    REASON_SL,
    REASON_SO,
    REASON_TP,
    SELL,
    SELL_STOP,
    Engine,
)
from simulators.mt5.retcodes import Refusal
from simulators.mt5.state import Books, User

D = Decimal


def engine_with(group: str, balance: str = "100000", leverage: int = 100) -> tuple[Engine, int]:
    books = Books()
    books.users[1] = User(
        login=1,
        group=group,
        name="Golden",
        password_main="x",
        password_investor="x",
        leverage=leverage,
        balance=balance,
    )
    engine = Engine(books)
    return engine, 1


def quote(engine: Engine, symbol: str, bid: str, ask: str) -> None:
    engine.set_quote(symbol, D(bid), D(ask))


class TestNettingPartialCloseAndReversal:
    """Reference §1.5 A: buy 1.0 @1.1000, sell 0.4 @1.1050, sell 1.5 @1.1100."""

    def test_deals_entries_and_profits(self) -> None:
        engine, login = engine_with("demo\\pro")  # retail netting, no commission
        quote(engine, "EURUSD", "1.0998", "1.1000")
        [opening] = engine.market(login, "EURUSD", BUY, 10_000)
        quote(engine, "EURUSD", "1.1050", "1.1052")
        [partial] = engine.market(login, "EURUSD", SELL, 4_000)
        quote(engine, "EURUSD", "1.1100", "1.1102")
        [reversal] = engine.market(login, "EURUSD", SELL, 15_000)

        assert (opening.entry, partial.entry, reversal.entry) == (ENTRY_IN, ENTRY_OUT, ENTRY_INOUT)
        assert (partial.volume, partial.volume_closed, D(partial.profit)) == (
            4_000,
            4_000,
            D("200.00"),
        )
        assert (reversal.volume, reversal.volume_closed, D(reversal.profit)) == (
            15_000,
            6_000,
            D("600.00"),
        )
        [position] = engine.positions_of(login)
        assert (
            position.position == opening.position_id == partial.position_id == reversal.position_id
        )
        assert (position.action, position.volume, D(position.price_open)) == (
            SELL,
            9_000,
            D("1.1100"),
        )
        assert engine.user(login).money[0] == D("100800.00")


class TestHedgingCloseBy:
    """Reference §1.5 B: buy 1.0 @1.1000, sell 0.5 @1.1020, close 0.4 of P1, close P1 by P2."""

    def test_out_by_pair_realises_the_open_price_difference(self) -> None:
        engine, login = engine_with("demo\\eur")  # retail hedging, EUR deposit, no commission
        engine.books.groups["demo\\eur"]["Currency"] = "USD"
        quote(engine, "EURUSD", "1.0998", "1.1000")
        [p1_open] = engine.market(login, "EURUSD", BUY, 10_000)
        quote(engine, "EURUSD", "1.1020", "1.1022")
        [p2_open] = engine.market(login, "EURUSD", SELL, 5_000)
        assert p2_open.entry == ENTRY_IN and p2_open.position_id != p1_open.position_id
        quote(engine, "EURUSD", "1.1050", "1.1052")
        [partial] = engine.market(login, "EURUSD", SELL, 4_000, position_id=p1_open.position_id)
        assert (partial.entry, D(partial.profit)) == (ENTRY_OUT, D("200.00"))

        first, second = engine.close_by(login, p1_open.position_id, p2_open.position_id)
        assert (first.entry, second.entry) == (ENTRY_OUT_BY, ENTRY_OUT_BY)
        assert (first.position_id, second.position_id) == (p1_open.position_id, p2_open.position_id)
        assert D(first.profit) + D(second.profit) == D("100.00")
        [left] = engine.positions_of(login)
        assert (left.position, left.action, left.volume) == (p1_open.position_id, BUY, 1_000)


class TestCommissionAndSwap:
    def test_per_lot_commission_on_entry_and_exit(self) -> None:
        engine, login = engine_with("demo\\standard")  # FX: 3.50 per lot, in and out
        quote(engine, "EURUSD", "1.0998", "1.1000")
        [opening] = engine.market(login, "EURUSD", BUY, 10_000)
        [closing] = engine.market(login, "EURUSD", SELL, 4_000, position_id=opening.position_id)
        assert (D(opening.commission), D(closing.commission)) == (D("-3.50"), D("-1.40"))
        # Gold is not on the FX path: no commission.
        quote(engine, "XAUUSD", "1999.75", "2000.00")
        [gold] = engine.market(login, "XAUUSD", BUY, 10_000)
        assert D(gold.commission) == 0
        assert engine.user(login).money[0] == D("100000") - D("3.50") - D("1.40") + D(
            closing.profit
        )

    def test_swaps_accrue_nightly_triple_on_wednesday_and_land_on_the_exit_deal(self) -> None:
        engine, login = engine_with("demo\\pro")
        quote(engine, "EURUSD", "1.0998", "1.1000")
        engine.market(login, "EURUSD", BUY, 10_000)
        engine.rollover(weekday=1)  # -6.5 points x 1 lot = -6.50 USD
        engine.rollover(weekday=3)  # Wednesday: three nights
        [position] = engine.positions_of(login)
        assert D(position.storage) == D("-26.00")
        assert engine.account(login).storage == D("-26.00")
        [closing] = engine.market(login, "EURUSD", SELL, 5_000)
        assert D(closing.storage) == D("-13.00")
        [position] = engine.positions_of(login)
        assert D(position.storage) == D("-13.00")


class TestMarginPerCalculationMode:
    """Reference §2.2 worked examples, plus the other modes by their formulas."""

    @pytest.mark.parametrize(
        ("symbol", "bid", "ask", "expected"),
        [
            ("EURUSD", "1.0998", "1.1000", "1100.00"),  # 1.0 x 100000 / 100 = 1000 EUR x 1.1000
            ("XAUUSD", "1999.75", "2000.00", "2000.00"),  # CFD leverage: 1 x 100 x 2000 / 100
            ("US500", "4999.50", "5000.00", "250.00"),  # CFD: 1 x 1 x 5000 x 0.05
            ("EURUSD.nl", "1.0998", "1.1000", "110000.00"),  # no leverage: 100000 EUR x 1.1000
            ("ES", "4999.75", "5000.00", "12000.00"),  # futures: initial margin per lot
            ("AAPL", "189.98", "190.00", "38.00"),  # exchange stocks: 1 x 1 x 190 x 0.2
            (
                "GER40",
                "17999.0",
                "18000.0",
                "990.00",
            ),  # CFD index: 1x1x18000x0.1/0.1x0.05 EUR x 1.1
        ],
    )
    def test_margin_of_one_lot(self, symbol: str, bid: str, ask: str, expected: str) -> None:
        engine, login = engine_with("demo\\pro", balance="1000000")
        quote(engine, "EURUSD", "1.0998", "1.1000")
        quote(engine, symbol, bid, ask)
        engine.market(login, symbol, BUY, 10_000)
        assert engine.account(login).margin == D(expected)

    def test_fully_hedged_legs_cost_half_the_margin_by_default(self) -> None:
        engine, login = engine_with("demo\\eur", balance="1000000")
        engine.books.groups["demo\\eur"]["Currency"] = "USD"
        quote(engine, "XAUUSD", "1999.75", "2000.00")
        engine.market(login, "XAUUSD", BUY, 10_000)
        one_leg = engine.account(login).margin
        quote(engine, "XAUUSD", "2000.00", "2000.25")
        engine.market(login, "XAUUSD", SELL, 10_000)
        # hedged 1 lot charged at MarginHedged (= contract size) per pair: as 1 lot, not 2
        assert engine.account(login).margin == one_leg


class TestStopOut:
    def test_the_losing_position_is_closed_with_reason_so(self) -> None:
        engine, login = engine_with("demo\\pro", balance="1000")
        quote(engine, "EURUSD", "1.0998", "1.1000")
        with pytest.raises(Refusal) as refused:
            engine.market(login, "EURUSD", BUY, 10_000)  # needs 1100 USD margin
        assert refused.value.code == 10019
        assert engine.positions_of(login) == [] and engine.user(login).money[0] == D("1000")
        engine.market(login, "EURUSD", BUY, 5_000)  # 550 USD margin
        quote(engine, "EURUSD", "1.0950", "1.0952")
        assert engine.stop_out(login) == []  # equity 750, level ~137%
        quote(engine, "EURUSD", "1.0850", "1.0852")  # equity 250 vs margin ~543: under 50%
        [closing] = engine.stop_out(login)
        assert (closing.reason, closing.entry, D(closing.profit)) == (
            REASON_SO,
            ENTRY_OUT,
            D("-750.00"),
        )
        assert engine.positions_of(login) == []
        assert engine.user(login).money[0] == D("250.00")


class TestDealerPlugin:
    def test_markup_widens_the_client_price_and_the_deal_keeps_the_market(self) -> None:
        engine, login = engine_with("real\\standard")  # B-book, 10 points markup
        quote(engine, "EURUSD", "1.09988", "1.10000")
        [buy] = engine.market(login, "EURUSD", BUY, 10_000)
        assert (D(buy.price), D(buy.market_bid), D(buy.market_ask)) == (
            D("1.10010"),
            D("1.09988"),
            D("1.10000"),
        )
        assert (buy.gateway, D(buy.price_gateway)) == ("", D(0))

    def test_a_book_deals_carry_the_lp_gateway_and_its_price(self) -> None:
        engine, login = engine_with("real\\pro")  # A-book, no markup
        quote(engine, "EURUSD", "1.09988", "1.10000")
        [sell] = engine.market(login, "EURUSD", SELL, 10_000)
        assert (sell.gateway, D(sell.price_gateway), D(sell.price)) == (
            "LP-Prime",
            D("1.09988"),
            D("1.09988"),
        )

    def test_markup_is_per_group_and_symbol(self) -> None:
        engine, login = engine_with("real\\standard")  # gold: 30 points
        quote(engine, "XAUUSD", "1999.75", "2000.00")
        [buy] = engine.market(login, "XAUUSD", BUY, 100)
        assert D(buy.price) == D("2000.30")


class TestPendingOrdersAndStops:
    def test_limit_stop_and_stop_limit_orders_fill_when_the_market_reaches_them(self) -> None:
        engine, login = engine_with("demo\\standard")
        quote(engine, "EURUSD", "1.09988", "1.10000")
        limit = engine.place_pending(login, "EURUSD", BUY_LIMIT, 10_000, D("1.09900"))
        stop = engine.place_pending(login, "EURUSD", SELL_STOP, 10_000, D("1.09800"))
        stop_limit = engine.place_pending(
            login, "EURUSD", BUY_STOP_LIMIT, 10_000, D("1.10050"), trigger=D("1.10100")
        )
        with pytest.raises(Refusal):  # a buy limit above the market is not a limit
            engine.place_pending(login, "EURUSD", BUY_LIMIT, 10_000, D("1.10100"))

        [limit_fill] = engine.set_quote("EURUSD", D("1.09888"), D("1.09900"))
        assert (D(limit_fill.price), limit_fill.entry) == (D("1.09900"), ENTRY_IN)
        [stop_fill] = engine.set_quote("EURUSD", D("1.09790"), D("1.09802"))
        assert D(stop_fill.price) == D("1.09790")  # a stop fills at the market
        assert engine.set_quote("EURUSD", D("1.10090"), D("1.10102")) == []  # stop-limit armed
        [stop_limit_fill] = engine.set_quote("EURUSD", D("1.10038"), D("1.10050"))
        assert D(stop_limit_fill.price) == D("1.10050")
        done = {o.order: o.state for o in engine.books.history_orders}
        assert done[limit.order] == done[stop.order] == done[stop_limit.order] == ORDER_FILLED
        assert engine.books.orders == {}

    def test_stop_loss_and_take_profit_close_with_their_reasons(self) -> None:
        engine, login = engine_with("demo\\eur")
        engine.books.groups["demo\\eur"]["Currency"] = "USD"
        quote(engine, "EURUSD", "1.09988", "1.10000")
        [long] = engine.market(login, "EURUSD", BUY, 10_000)
        [short] = engine.market(login, "EURUSD", SELL, 10_000)
        with pytest.raises(Refusal):  # a stop loss above a long's close price is invalid
            engine.set_stops(login, long.position_id, D("1.10100"), D(0))
        engine.set_stops(login, long.position_id, D("1.09500"), D("1.10500"))
        engine.set_stops(login, short.position_id, D("1.10600"), D(0))
        [take_profit] = engine.set_quote("EURUSD", D("1.10500"), D("1.10512"))
        assert (take_profit.reason, take_profit.position_id) == (REASON_TP, long.position_id)
        [stop_loss] = engine.set_quote("EURUSD", D("1.10590"), D("1.10602"))
        assert (stop_loss.reason, stop_loss.position_id) == (REASON_SL, short.position_id)
        assert engine.positions_of(login) == []


class TestDailyCommissionAndMarginCall:
    def test_daily_commission_accumulates_and_is_charged_at_the_end_of_the_day(self) -> None:
        engine, login = engine_with("demo\\pro")
        engine.books.groups["demo\\pro"]["Commissions"] = [
            {
                "Path": "Metals\\*",
                "ChargeMode": 0,
                "EntryMode": 1,
                "Tiers": [{"Mode": 0, "Type": 1, "Value": "7.00"}],
            }
        ]
        quote(engine, "XAUUSD", "1999.75", "2000.00")
        [opening] = engine.market(login, "XAUUSD", BUY, 20_000)
        assert D(opening.commission) == 0
        assert D(engine.user(login).commission_daily) == D("-14.00")
        [charge] = engine.end_of_day()
        assert (charge.action, D(charge.profit)) == (8, D("-14.00"))
        assert engine.user(login).money[0] == D("99986.00")

    def test_the_account_reports_margin_call_before_stop_out(self) -> None:
        engine, login = engine_with("demo\\pro", balance="1000")  # call 100%, stop out 50%
        quote(engine, "EURUSD", "1.0998", "1.1000")
        engine.market(login, "EURUSD", BUY, 5_000)
        assert engine.account(login).activation == 0
        quote(engine, "EURUSD", "1.0900", "1.0902")  # equity 500 / margin ~545: call
        assert engine.account(login).activation == 1

    def test_trading_sessions_when_enforced(self) -> None:
        engine, login = engine_with("demo\\pro")
        engine.enforce_sessions = True
        engine.clock.frozen_msc = 1_795_262_400_000  # Saturday 2026-11-21 12:00 UTC
        with pytest.raises(Refusal) as closed:
            engine.market(login, "EURUSD", BUY, 1_000)
        assert closed.value.code == 10018
        engine.market(login, "BTCUSD", BUY, 1_000)  # crypto trades at the weekend
