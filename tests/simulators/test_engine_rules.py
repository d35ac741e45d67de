"""The engine's risk and commission rules, in process, with figures computed by hand from
../shared/broker-domain-reference.md (section 2) and ../shared/mt5-webapi-reference.md (4.8, 5)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from simulators.mt5.catalogue import CATALOGUE
from simulators.mt5.clock import ServerClock
from simulators.mt5.engine import (
    BUY,
    BUY_LIMIT,
    ENTRY_INOUT,
    ENTRY_OUT_BY,
    ORDER_CLOSE_BY,
    REASON_SO,
    SELL,
    Engine,
)
from simulators.mt5.feed import PriceFeed
from simulators.mt5.retcodes import Refusal
from simulators.mt5.state import Books, User

D = Decimal
NETTING_USD = "demo\\pro"  # retail netting, USD, no commissions, stop-out 50 %
HEDGING_USD = "demo\\eur"  # retail hedging, no commissions (its currency set to USD below)
CLIENT, AGENT = 1, 2


def engine_with(
    group: str = NETTING_USD, balance: str = "1000000", **symbols: dict[str, Any]
) -> Engine:
    """An engine with account CLIENT in `group` (1:100) and agent account AGENT (USD netting);
    `symbols` overrides catalogue fields per symbol name."""
    books = Books()
    books.groups[HEDGING_USD]["Currency"] = "USD"
    for login, where, money in ((CLIENT, group, balance), (AGENT, NETTING_USD, "0")):
        books.users[login] = User(
            login=login,
            group=where,
            name=f"Rules {login}",
            password_main="x",
            password_investor="x",
            leverage=100,
            balance=money,
            agent=AGENT if login == CLIENT else 0,
        )
    catalogue = dict(CATALOGUE)
    for name, fields in symbols.items():
        catalogue[name] = replace(CATALOGUE[name], **fields)
    return Engine(books, catalogue)


def refused(code: int, call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(Refusal) as refusal:
        call(*args, **kwargs)
    assert refusal.value.code == code


def rates(*per_type: str) -> tuple[Decimal, ...]:
    """Margin rates for order types 0..7; the unnamed ones 0."""
    return tuple(D(r) for r in per_type) + (D(0),) * (8 - len(per_type))


# -- margin -----------------------------------------------------------------------------------


class TestPerSideMargin:
    def test_buys_and_sells_use_their_own_rate_at_the_open_price(self) -> None:
        engine = engine_with(XTIUSD={"margin_rates_initial": rates("0.1", "0.2")})
        engine.set_quote("XTIUSD", D("75.000"), D("75.030"))
        engine.market(CLIENT, "XTIUSD", BUY, 10_000)
        # buy: 1 lot x 1000 x 75.030 (ask, the open price) x 0.1 = 7503.00
        assert engine.account(CLIENT).margin == D("7503.00")
        # A position is charged at its open price, whatever the market does since.
        engine.set_quote("XTIUSD", D("80.000"), D("80.030"))
        assert engine.account(CLIENT).margin == D("7503.00")
        engine.market(CLIENT, "XTIUSD", SELL, 10_000)  # netting: closed
        engine.market(CLIENT, "XTIUSD", SELL, 10_000)
        # sell: 1 lot x 1000 x 80.000 (bid) x 0.2 = 16000.00
        assert engine.account(CLIENT).margin == D("16000.00")

    def test_maintenance_rates_hold_open_positions_and_initial_ones_admit_new_orders(
        self,
    ) -> None:
        engine = engine_with(
            balance="5000",
            XTIUSD={
                "margin_rates_initial": rates("0.1", "0.1"),
                "margin_rates_maintenance": rates("0.05", "0.05"),
            },
        )
        engine.set_quote("XTIUSD", D("75.030"), D("75.030"))
        # initial: 1 x 1000 x 75.030 x 0.1 = 7503 > equity 5000, though maintenance would fit
        refused(10019, engine.market, CLIENT, "XTIUSD", BUY, 10_000)
        engine.user(CLIENT).balance = "8000"
        engine.market(CLIENT, "XTIUSD", BUY, 10_000)
        # held at maintenance: 1 x 1000 x 75.030 x 0.05 = 3751.50
        assert engine.account(CLIENT).margin == D("3751.50")

    def test_pending_orders_are_charged_only_where_their_type_has_a_rate(self) -> None:
        engine = engine_with(XTIUSD={"margin_rates_initial": rates("0.1", "0.1", "0.1")})
        engine.set_quote("XTIUSD", D("75.000"), D("75.030"))
        engine.place_pending(CLIENT, "XTIUSD", BUY_LIMIT, 10_000, D("74.000"))
        # buy limit: 1 lot x 1000 x 74.000 (order price) x 0.1 = 7400.00
        assert engine.account(CLIENT).margin == D("7400.00")
        engine.set_quote("EURUSD", D("1.10000"), D("1.10012"))
        engine.place_pending(CLIENT, "EURUSD", BUY_LIMIT, 10_000, D("1.09000"))
        assert engine.account(CLIENT).margin == D("7400.00")  # retail FX: no rates, no margin
        # The order fills at 74.000: the position is charged, the order no longer.
        engine.set_quote("XTIUSD", D("73.970"), D("74.000"))
        assert engine.account(CLIENT).margin == D("7400.00")
        assert [o.symbol for o in engine.books.orders.values()] == ["EURUSD"]


class TestHedgedMargin:
    """XAUUSD (CFD leverage, contract 100, 1:100): buy 2 lots @2000.00, buy 1 @2010.00,
    sell 1 @2020.00. Buy leg 3 lots at (2 x 2000 + 2010) / 3 = 2003.3333; sell leg 1 lot at 2020."""

    def open_legs(self, **gold: Any) -> Engine:
        engine = engine_with(HEDGING_USD, XAUUSD=gold)
        engine.set_quote("XAUUSD", D("1999.75"), D("2000.00"))
        engine.market(CLIENT, "XAUUSD", BUY, 20_000)
        engine.set_quote("XAUUSD", D("2009.75"), D("2010.00"))
        engine.market(CLIENT, "XAUUSD", BUY, 10_000)
        engine.set_quote("XAUUSD", D("2020.00"), D("2020.25"))
        engine.market(CLIENT, "XAUUSD", SELL, 10_000)
        return engine

    def test_uncovered_and_hedged_volume_with_margin_hedged(self) -> None:
        engine = self.open_legs(margin_hedged=D(50))
        # uncovered: 2 lots x 100 x 2003.3333 / 100 = 4006.6667
        # hedged: 1 lot x 50 / 100 = 0.5 lot x 100 x (2003.3333 + 2020) / 2 / 100 = 1005.8333
        # total 5012.50
        assert engine.account(CLIENT).margin == D("5012.50")

    def test_hedged_volume_with_margin_hedged_zero_needs_no_margin(self) -> None:
        engine = self.open_legs(margin_hedged=D(0))
        assert engine.account(CLIENT).margin == D("4006.67")  # the uncovered 2 lots only

    def test_the_large_leg_flag_charges_only_the_larger_leg(self) -> None:
        engine = self.open_legs(margin_flags=4)
        # buy leg 3 x 100 x 2003.3333 / 100 = 6010.00; sell leg 1 x 100 x 2020 / 100 = 2020.00
        assert engine.account(CLIENT).margin == D("6010.00")

    def test_the_uncovered_part_takes_the_larger_legs_rate(self) -> None:
        engine = self.open_legs(margin_hedged=D(0), margin_rates_initial=rates("1.5", "1"))
        # 2 lots x 100 x 2003.3333 / 100 x 1.5 (the buy rate) = 6010.00
        assert engine.account(CLIENT).margin == D("6010.00")


class TestExchangeStocksAtLast:
    def test_margin_follows_last_not_bid_ask_or_open_price(self) -> None:
        engine = engine_with()
        engine.set_quote("AAPL", D("189.98"), D("190.02"), last=D("190.10"))
        [deal] = engine.market(CLIENT, "AAPL", BUY, 100_000)
        assert D(deal.price) == D("190.02")  # fills at the ask
        # 10 lots x 1 x 190.10 (Last) x 0.2 = 380.20
        assert engine.account(CLIENT).margin == D("380.20")
        engine.set_quote("AAPL", D("199.98"), D("200.02"), last=D("200.00"))
        assert engine.account(CLIENT).margin == D("400.00")  # 10 x 200.00 x 0.2
        assert engine.last("AAPL") == D("200.00")
        assert engine.books.quotes["AAPL"] == ["199.98", "200.02", "200.00"]

    def test_otc_symbols_print_no_last_and_keep_two_element_quotes(self) -> None:
        engine = engine_with()
        engine.set_quote("EURUSD", D("1.10000"), D("1.10012"))
        assert engine.books.quotes["EURUSD"] == ["1.10000", "1.10012"]
        assert engine.last("EURUSD") == 0
        assert engine.quote("AAPL") == (D("190.00"), D("190.04"))
        assert engine.last("AAPL") == D("190.00")  # no trade printed yet: at the bid


# -- conversion -------------------------------------------------------------------------------


class TestConversionOnTheLessFavourableSide:
    """USDJPY profits are in JPY; a USD account converts them through USDJPY (inverse pair):
    a gain at 1/ask (fewer dollars), a loss at 1/bid (more dollars)."""

    def test_gains_and_losses(self) -> None:
        engine = engine_with()
        engine.set_quote("USDJPY", D("150.000"), D("150.000"))
        engine.market(CLIENT, "USDJPY", BUY, 10_000)
        engine.set_quote("USDJPY", D("151.000"), D("151.200"))
        # gain: (151.000 - 150.000) x 100000 = 100000 JPY x 1/151.200 (0.00661376) = 661.38
        [position] = engine.positions_of(CLIENT)
        assert engine.floating_profit(position) == D("661.38")
        engine.set_quote("USDJPY", D("149.000"), D("149.200"))
        # loss: (149.000 - 150.000) x 100000 = -100000 JPY x 1/149.000 (0.00671141) = -671.14
        assert engine.floating_profit(position) == D("-671.14")
        [closing] = engine.market(CLIENT, "USDJPY", SELL, 10_000)
        assert (D(closing.profit), D(closing.rate_profit)) == (D("-671.14"), D("0.00671141"))


# -- volume limits and trade mode -------------------------------------------------------------


class TestVolumeAndTradeMode:
    def test_volume_below_min_above_max_or_off_the_step_is_10014(self) -> None:
        engine = engine_with(EURUSD={"volume_min": 1_000, "volume_max": 50_000, "volume_step": 500})
        for volume in (500, 55_000, 1_200):  # 0.05 < 0.1 min; 5.5 > 5 max; 0.12 off 0.05 steps
            refused(10014, engine.market, CLIENT, "EURUSD", BUY, volume)
            refused(10014, engine.place_pending, CLIENT, "EURUSD", BUY_LIMIT, volume, D("1.05"))
        engine.market(CLIENT, "EURUSD", BUY, 1_500)

    def test_trade_modes(self) -> None:
        engine = engine_with(HEDGING_USD, EURUSD={"trade_mode": 0})
        refused(10017, engine.market, CLIENT, "EURUSD", BUY, 1_000)
        engine.catalogue["XAUUSD"] = replace(CATALOGUE["XAUUSD"], trade_mode=1)  # long only
        [long] = engine.market(CLIENT, "XAUUSD", BUY, 1_000)
        refused(10042, engine.market, CLIENT, "XAUUSD", SELL, 1_000)
        engine.market(CLIENT, "XAUUSD", SELL, 1_000, position_id=long.position_id)  # a close
        engine.catalogue["XAUUSD"] = replace(CATALOGUE["XAUUSD"], trade_mode=2)  # short only
        refused(10043, engine.market, CLIENT, "XAUUSD", BUY, 1_000)
        [short] = engine.market(CLIENT, "XAUUSD", SELL, 1_000)
        engine.catalogue["XAUUSD"] = replace(CATALOGUE["XAUUSD"], trade_mode=3)  # close only
        refused(10044, engine.market, CLIENT, "XAUUSD", SELL, 1_000)
        engine.market(CLIENT, "XAUUSD", BUY, 1_000, position_id=short.position_id)

    def test_a_netting_reversal_opens_so_close_only_refuses_it(self) -> None:
        engine = engine_with()
        engine.market(CLIENT, "EURUSD", BUY, 1_000)
        engine.catalogue["EURUSD"] = replace(CATALOGUE["EURUSD"], trade_mode=3)
        refused(10044, engine.market, CLIENT, "EURUSD", SELL, 2_000)
        engine.market(CLIENT, "EURUSD", SELL, 1_000)
        assert engine.positions_of(CLIENT) == []


# -- commissions ------------------------------------------------------------------------------


def commissions(engine: Engine, *rules: dict[str, Any]) -> None:
    engine.books.groups[engine.user(CLIENT).group]["Commissions"] = [
        {"Path": "Forex\\*", "Mode": 0, "ChargeMode": 2, "EntryMode": 0, **rule} for rule in rules
    ]


def tier(value: str, **fields: Any) -> dict[str, Any]:
    return {"Mode": 0, "Type": 1, "Value": value, "RangeFrom": "0", "RangeTo": "0", **fields}


class TestTieredCommissions:
    def test_tiers_by_deal_volume_with_minimum_and_maximum(self) -> None:
        engine = engine_with()
        commissions(
            engine,
            {
                "RangeMode": 0,
                "Tiers": [
                    tier("5.00", RangeTo="1", Minimal="2.00"),  # under 1 lot: 5/lot, >= 2.00
                    tier("4.00", RangeFrom="1", Maximal="30.00"),  # 1 lot and up: 4/lot, <= 30
                ],
            },
        )
        charged = [
            D(engine.market(CLIENT, "EURUSD", BUY, volume)[0].commission)
            for volume in (1_000, 5_000, 20_000, 100_000)
        ]
        # 0.1 lot: 0.50 -> min 2.00; 0.5: 2.50; 2 lots: 8.00; 10 lots: 40.00 -> max 30.00
        assert charged == [D("-2.00"), D("-2.50"), D("-8.00"), D("-30.00")]
        assert engine.user(CLIENT).money[0] == D("1000000") - D("42.50")

    def test_tier_modes(self) -> None:
        engine = engine_with()
        engine.set_quote("EURUSD", D("1.10000"), D("1.10000"))
        engine.set_quote("USDJPY", D("150.000"), D("150.012"))

        def charge(symbol: str, **fields: Any) -> Decimal:
            commissions(engine, {"Tiers": [tier("0", **fields)]})
            [deal] = engine.market(CLIENT, symbol, BUY, 10_000)
            engine.market(CLIENT, symbol, SELL, 10_000)
            return D(deal.commission)

        assert charge("EURUSD", Type=0, Value="7") == D("-7.00")  # per deal
        # money in the profit currency, JPY, at the client's worse rate 1/bid:
        # 500 JPY x 1/150.000 (0.00666667) = 3.33
        assert charge("USDJPY", Mode=2, Value="500") == D("-3.33")
        # money in the base currency, EUR -> USD at the ask: 3 EUR x 1.10000 = 3.30
        assert charge("EURUSD", Mode=1, Value="3") == D("-3.30")
        # 10 points on 1 lot: 10 x 0.00001 x 100000 = 10 USD
        assert charge("EURUSD", Mode=4, Value="10") == D("-10.00")
        # 0.002 % of the turnover: 1 lot x 100000 x 1.10000 = 110000 USD x 0.00002 = 2.20
        assert charge("EURUSD", Mode=5, Value="0.002") == D("-2.20")

    def test_percent_of_profit_on_profitable_exits_only(self) -> None:
        engine = engine_with()
        commissions(engine, {"EntryMode": 2, "ProfitMode": 1, "Tiers": [tier("10", Mode=7)]})
        engine.set_quote("EURUSD", D("1.10000"), D("1.10000"))
        engine.market(CLIENT, "EURUSD", BUY, 10_000)
        engine.set_quote("EURUSD", D("1.10500"), D("1.10500"))
        [winner] = engine.market(CLIENT, "EURUSD", SELL, 10_000)
        # profit (1.10500 - 1.10000) x 100000 = 500.00; 10 % = 50.00
        assert (D(winner.profit), D(winner.commission)) == (D("500.00"), D("-50.00"))
        engine.market(CLIENT, "EURUSD", BUY, 10_000)
        engine.set_quote("EURUSD", D("1.10000"), D("1.10000"))
        [loser] = engine.market(CLIENT, "EURUSD", SELL, 10_000)
        assert (D(loser.profit), D(loser.commission)) == (D("-500.00"), D(0))

    def test_monthly_turnover_volume_picks_the_tier(self) -> None:
        engine = engine_with()
        commissions(
            engine,
            {"RangeMode": 2, "Tiers": [tier("5", RangeTo="2"), tier("1", RangeFrom="2")]},
        )
        first, second = (engine.market(CLIENT, "EURUSD", side, 10_000)[0] for side in (BUY, SELL))
        # turnover this month, this deal included: 1 lot -> 5/lot; 2 lots -> 1/lot
        assert (D(first.commission), D(second.commission)) == (D("-5.00"), D("-1.00"))

    def test_entry_modes_on_a_reversal_and_action_mode(self) -> None:
        engine = engine_with()
        commissions(
            engine,
            {"Name": "all", "Tiers": [tier("1")]},
            {"Name": "in", "EntryMode": 1, "Tiers": [tier("10")]},
            {"Name": "out", "EntryMode": 2, "Tiers": [tier("100")]},
            {"Name": "buys", "ActionMode": 1, "Tiers": [tier("1000")]},
        )
        [opening] = engine.market(CLIENT, "EURUSD", BUY, 10_000)
        # 1 lot in: all 1 + in 10 + buys 1000
        assert D(opening.commission) == D("-1011.00")
        [reversal] = engine.market(CLIENT, "EURUSD", SELL, 30_000)
        assert reversal.entry == ENTRY_INOUT
        # 3 lots, 1 closed and 2 opened: all 3 x 1 + in 2 x 10 + out 1 x 100 (a sell: no buys)
        assert D(reversal.commission) == D("-123.00")

    def test_daily_and_monthly_commissions_are_charged_at_the_day_and_months_end(self) -> None:
        engine = engine_with()
        commissions(
            engine,
            {"ChargeMode": 0, "Tiers": [tier("2")]},
            {"ChargeMode": 1, "Tiers": [tier("3")]},
        )
        [deal] = engine.market(CLIENT, "EURUSD", BUY, 20_000)
        assert D(deal.commission) == 0
        user = engine.user(CLIENT)
        assert (D(user.commission_daily), D(user.commission_monthly)) == (D(-4), D(-6))
        [daily] = engine.end_of_day()
        assert (daily.action, D(daily.profit)) == (8, D("-4.00"))
        [monthly] = engine.end_of_day(month_end=True)
        assert (monthly.action, D(monthly.profit)) == (9, D("-6.00"))
        assert engine.user(CLIENT).money[0] == D("1000000") - D("10.00")

    def test_agent_commissions_go_to_the_agent_not_the_client(self) -> None:
        engine = engine_with()
        commissions(
            engine,
            {"Mode": 1, "ChargeMode": 2, "Tiers": [tier("1.50")]},
            {"Mode": 1, "ChargeMode": 0, "Tiers": [tier("0.75")]},
            {"Mode": 2, "ChargeMode": 2, "Tiers": [tier("0.25")]},
        )
        [deal] = engine.market(CLIENT, "EURUSD", BUY, 20_000)
        # the client pays only the fee: 2 lots x 0.25 = 0.50, on Fee, not on Commission
        assert (D(deal.commission), D(deal.fee)) == (D(0), D("-0.50"))
        assert engine.user(CLIENT).money[0] == D("999999.50")
        [instant] = engine.books.deals_of(AGENT)
        assert (instant.action, D(instant.profit)) == (18, D("3.00"))  # 2 lots x 1.50
        assert D(engine.user(AGENT).commission_agent_daily) == D("1.50")  # 2 lots x 0.75
        [payout] = engine.end_of_day()
        assert (payout.login, payout.action, D(payout.profit)) == (AGENT, 10, D("1.50"))
        assert engine.user(AGENT).money[0] == D("4.50")


# -- stop-out after balance operations, close-by ----------------------------------------------


class TestStopOutAfterBalanceOperations:
    """Netting USD, 1:100, balance 2000; EURUSD 1 lot bought at 1.1000 (no spread): margin
    1 x 100000 / 100 = 1000 EUR x 1.1000 = 1100.00 USD, equity 2000, free margin 900."""

    def opened(self) -> Engine:
        engine = engine_with(balance="2000")
        engine.set_quote("EURUSD", D("1.10000"), D("1.10000"))
        engine.market(CLIENT, "EURUSD", BUY, 10_000)
        return engine

    def test_a_withdrawal_that_breaches_the_level_stops_the_account_out(self) -> None:
        engine = self.opened()
        deal, stopped = engine.balance_operation(
            CLIENT, 2, D("-1500"), "withdrawal", check_margin=False
        )
        # equity 500 / margin 1100 = 45.45 % <= 50 %: the position is closed at 1.10000, 0 profit
        assert (deal.action, D(deal.profit)) == (2, D("-1500.00"))
        [closing] = stopped
        assert (closing.reason, D(closing.profit)) == (REASON_SO, D(0))
        assert engine.positions_of(CLIENT) == []
        assert engine.user(CLIENT).money == (D("500.00"), D(0))

    def test_with_check_margin_only_the_free_margin_may_leave(self) -> None:
        engine = self.opened()
        refused(10019, engine.balance_operation, CLIENT, 2, D("-900.01"), "", check_margin=True)
        _, stopped = engine.balance_operation(CLIENT, 2, D("-900"), "", check_margin=True)
        assert stopped == []  # equity 1100 / margin 1100 = 100 %
        assert engine.account(CLIENT).margin_level == D("100.00")

    def test_credit_moves_credit_and_taking_it_back_can_stop_out(self) -> None:
        engine = self.opened()
        engine.balance_operation(CLIENT, 3, D("1000"), "bonus", check_margin=True)
        engine.balance_operation(CLIENT, 2, D("-1400"), "out", check_margin=False)
        # balance 600 + credit 1000 = 1600 / 1100 = 145 %; credit back: 600 / 1100 = 54.5 %
        _, stopped = engine.balance_operation(CLIENT, 3, D("-1000"), "", check_margin=False)
        assert stopped == []
        assert engine.user(CLIENT).money == (D("600.00"), D(0))
        refused(10019, engine.balance_operation, CLIENT, 3, D("-0.01"), "", check_margin=False)

    def test_a_daily_commission_that_breaches_the_level_stops_out(self) -> None:
        engine = self.opened()
        engine.user(CLIENT).commission_daily = "-1460"
        # equity 2000 - 1460 = 540 / 1100 = 49.09 %
        [charge, closing] = engine.end_of_day()
        assert (charge.action, closing.reason) == (8, REASON_SO)


class TestCloseBy:
    def test_both_deals_and_the_history_order_name_the_opposite_position(self) -> None:
        engine = engine_with(HEDGING_USD)
        [buy] = engine.market(CLIENT, "EURUSD", BUY, 10_000)
        [sell] = engine.market(CLIENT, "EURUSD", SELL, 10_000)
        first, second = engine.close_by(CLIENT, buy.position_id, sell.position_id)
        assert (first.entry, second.entry) == (ENTRY_OUT_BY, ENTRY_OUT_BY)
        assert (first.position_by_id, second.position_by_id) == (sell.position_id, buy.position_id)
        order = engine.books.history_orders[-1]
        assert (order.order, order.type) == (first.order, ORDER_CLOSE_BY)
        assert (order.position_id, order.position_by_id) == (buy.position_id, sell.position_id)


# -- automatic rollover in server time --------------------------------------------------------


def utc_msc(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


class TestRolloverInServerTime:
    """A server at UTC+2 with EU daylight saving (UTC+3 in summer): its midnight is 22:00 UTC
    in winter, 21:00 UTC in summer. EURUSD buy 1 lot: swap -6.5 points x 0.00001 x 100000 =
    -6.50 USD a night, three on Wednesday (Swap3Day 3); BTCUSD trades every day."""

    def at(self, engine: Engine, moment: int) -> list[Any]:
        engine.clock.frozen_msc = moment
        return engine.roll_over_if_due()

    def opened(self, moment: int) -> Engine:
        engine = engine_with()
        engine.clock = ServerClock(zone_minutes=120, daylight=True)
        assert self.at(engine, moment) == []  # the first look only notes the server date
        engine.market(CLIENT, "EURUSD", BUY, 10_000)
        return engine

    def storage(self, engine: Engine, symbol: str = "EURUSD") -> Decimal:
        [position] = [p for p in engine.positions_of(CLIENT) if p.symbol == symbol]
        return D(position.storage)

    def test_across_a_weekend_one_night_from_friday_none_for_saturday_and_sunday(self) -> None:
        engine = self.opened(utc_msc(2026, 11, 20, 21, 59))  # Friday 23:59 server
        engine.set_quote("BTCUSD", D("60000.00"), D("60000.00"))
        engine.market(CLIENT, "BTCUSD", BUY, 10_000)
        engine.user(CLIENT).commission_daily = "-1.00"
        self.at(engine, utc_msc(2026, 11, 20, 21, 59, 59))
        assert self.storage(engine) == 0  # not yet midnight on the server
        [charge] = self.at(engine, utc_msc(2026, 11, 20, 22, 0))  # Saturday 00:00 server
        assert (charge.action, charge.time_msc) == (8, utc_msc(2026, 11, 20, 22, 0))
        assert self.storage(engine) == D("-6.50")
        self.at(engine, utc_msc(2026, 11, 22, 22, 1))  # Monday 00:01 server
        assert self.storage(engine) == D("-6.50")  # Saturday and Sunday: no FX swap
        assert engine.books.rolled_over_to == "2026-11-23"
        # BTCUSD (interest -20 %/year, triple on Friday): 1 x 60000 x -0.20 / 360 = -33.3333;
        # Friday x3 = -100.00, Saturday -133.33, Sunday -166.66 (rounded night by night)
        assert self.storage(engine, "BTCUSD") == D("-166.66")

    def test_the_triple_day_in_summer_time(self) -> None:
        engine = self.opened(utc_msc(2026, 7, 15, 20, 59))  # Wednesday 23:59 server (UTC+3)
        self.at(engine, utc_msc(2026, 7, 15, 21, 1))  # Thursday 00:01 server
        assert self.storage(engine) == D("-19.50")  # 3 x -6.50
        self.at(engine, utc_msc(2026, 7, 16, 21, 1))  # Friday 00:01 server
        assert self.storage(engine) == D("-26.00")

    def test_monthly_commission_and_agent_payout_on_the_first_of_the_month(self) -> None:
        engine = self.opened(utc_msc(2026, 11, 30, 12, 0))  # Monday 30 November
        engine.user(CLIENT).commission_monthly = "-9.00"
        engine.user(AGENT).commission_agent_monthly = "4.00"
        deals = self.at(engine, utc_msc(2026, 11, 30, 22, 0))  # 1 December 00:00 server
        assert sorted((d.login, d.action, D(d.profit)) for d in deals) == [
            (CLIENT, 9, D("-9.00")),
            (AGENT, 11, D("4.00")),
        ]


class TestFeedInServerTime:
    def test_spreads_widen_in_the_servers_first_hour_and_exchange_symbols_print_last(self) -> None:
        feed = PriceFeed(CATALOGUE, 1, clock=ServerClock(zone_minutes=120))
        # Wednesday 18 November 2026 at UTC+2: the server's day starts at 22:00 UTC.
        before = feed.tick("EURUSD", utc_msc(2026, 11, 18, 21, 5)) or (D(0), D(0))
        after = feed.tick("EURUSD", utc_msc(2026, 11, 18, 22, 5)) or (D(0), D(0))
        # 12 points of 0.00001, four times as wide in the rollover hour
        assert (before[1] - before[0], after[1] - after[0]) == (D("0.00012"), D("0.00048"))
        assert feed.last("EURUSD") is None  # OTC: no trades printed
        bid, ask = feed.tick("AAPL", utc_msc(2026, 11, 18, 15, 0)) or (D(0), D(0))
        assert feed.last("AAPL") == bid + D("0.02") < ask  # inside its 4-point spread
