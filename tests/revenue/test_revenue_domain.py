"""domain.revenue: golden cases computed by hand (docs/revenue.md) and properties."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.revenue import (
    BUY,
    ENTRY_IN,
    ENTRY_INOUT,
    ENTRY_OUT,
    ENTRY_OUT_BY,
    SELL,
    Amount,
    DealerRule,
    DealFacts,
    Observed,
    captured_markup_points,
    captured_spread_points,
    check_mirror,
    deal_revenue,
    floating_b_book,
    rule_for,
)

D = Decimal


def usd(amount: str) -> Amount:
    return Amount(D(amount), "USD")


class TestGoldenCases:
    def test_a_b_book_buy_with_markup(self) -> None:
        # EURUSD 1 lot, raw 1.09988/1.10000, 10 points markup: bought at 1.10010.
        # spread 2 x (1.10010 - 1.09994) = 32 points (12 raw + 2 x 10); vs mid 16 x 10 = 16 USD;
        # markup 0.00010 x 100000 = 10 USD; commission 3.50 charged.
        r = deal_revenue(
            DealFacts(1, 7, "EURUSD", BUY, ENTRY_IN, 5, D(100000), 10_000, D("1.10010"), "USD",
                      market_bid=D("1.09988"), market_ask=D("1.10000"),
                      commission=D("-3.50"), order_type=0)
        )  # fmt: skip
        assert (r.spread_points, r.markup_points, r.slippage_points) == (D(32), D(10), None)
        assert (r.spread_captured, r.markup) == (usd("16"), usd("10"))
        assert (r.commission_revenue, r.b_book_pnl, r.a_book_cost) == (usd("3.50"), usd("0"), None)
        assert r.comparable and not r.a_book

    def test_a_b_book_sell_with_markup_closing_a_winner(self) -> None:
        # XAUUSD 0.5 lot (CS 100) sold at 2009.70 against raw 2010.00/2010.25, 30 points markup;
        # requested 2009.75: 5 points worse. mid 2010.125: 2 x 42.5 = 85 points; 0.425 x 50 =
        # 21.25; markup 0.30 x 50 = 15.00; the client made 470.00: the house lost it.
        r = deal_revenue(
            DealFacts(2, 7, "XAUUSD", SELL, ENTRY_OUT, 2, D(100), 5_000, D("2009.70"), "USD",
                      market_bid=D("2010.00"), market_ask=D("2010.25"),
                      price_requested=D("2009.75"), profit=D("470.00"), order_type=1)
        )  # fmt: skip
        assert (r.spread_points, r.markup_points, r.slippage_points) == (D(85), D(30), D(5))
        assert (r.spread_captured, r.markup, r.b_book_pnl) == (
            usd("21.25"),
            usd("15"),
            usd("-470"),
        )

    def test_an_a_book_deal_the_lp_filled_worse(self) -> None:
        # EURUSD 2 lots sold at the raw bid 1.09988 (no markup) on a EUR account (RateProfit
        # 0.9); the LP filled at 1.09985: 3 points worse. A-book cost -(1.09985 - 1.09988) x
        # 200000 x 0.9 = 5.40 EUR; spread captured vs mid 0.00006 x 200000 x 0.9 = 10.80 EUR.
        r = deal_revenue(
            DealFacts(3, 8, "EURUSD", SELL, ENTRY_IN, 5, D(100000), 20_000, D("1.09988"), "EUR",
                      market_bid=D("1.09988"), market_ask=D("1.10000"), gateway="LP-Prime",
                      price_gateway=D("1.09985"), commission=D("-5.00"), rate_profit=D("0.9"))
        )  # fmt: skip
        assert r.a_book
        assert (r.markup_points, r.spread_points, r.gateway_slippage_points) == (D(0), D(12), D(3))
        assert r.a_book_cost == Amount(D("5.40"), "EUR")
        assert r.spread_captured == Amount(D("10.80"), "EUR")
        assert (r.b_book_pnl, r.commission_revenue) == (
            Amount(D(0), "EUR"),
            Amount(D("5.00"), "EUR"),
        )

    def test_a_netting_reversal_marks_up_the_whole_deal_and_realises_the_closed_part(
        self,
    ) -> None:
        # Reference 1.5 A, third deal: sell 1.5 INOUT, 0.6 closed for +600 USD. Raw
        # 1.11010/1.11030, 10 points markup: sold at 1.11000. Markup on all 1.5 lots: 15.00;
        # spread 2 x 20 = 40 points, 0.0002 x 150000 = 30.00 vs mid; B-book -600.
        r = deal_revenue(
            DealFacts(4, 7, "EURUSD", SELL, ENTRY_INOUT, 5, D(100000), 15_000, D("1.11000"),
                      "USD", market_bid=D("1.11010"), market_ask=D("1.11030"),
                      profit=D("600.00"))
        )  # fmt: skip
        assert (r.lots, r.markup_points, r.spread_points) == (D("1.5"), D(10), D(40))
        assert (r.markup, r.spread_captured, r.b_book_pnl) == (usd("15"), usd("30"), usd("-600"))
        assert not r.comparable  # its order is not known

    def test_a_deal_without_market_prices_keeps_its_money_figures_only(self) -> None:
        r = deal_revenue(
            DealFacts(5, 7, "EURUSD", SELL, ENTRY_OUT, 5, D(100000), 10_000, D("1.1"), "USD",
                      profit=D("-120.00"), commission=D("-2"), fee=D("-0.5"), order_type=1)
        )  # fmt: skip
        assert (r.spread_points, r.markup_points, r.spread_captured, r.markup) == (None,) * 4
        assert (r.b_book_pnl, r.commission_revenue, r.fee_revenue) == (
            usd("120"),
            usd("2"),
            usd("0.5"),
        )
        assert not r.comparable

    def test_close_by_crosses_no_market(self) -> None:
        r = deal_revenue(
            DealFacts(6, 7, "EURUSD", SELL, ENTRY_OUT_BY, 5, D(100000), 5_000, D("1.1020"),
                      "USD", market_bid=D("1.1"), market_ask=D("1.1002"),
                      price_requested=D("1.1"), profit=D("100"))
        )  # fmt: skip
        assert (r.markup, r.spread_points, r.slippage_points) == (None, None, None)
        assert r.b_book_pnl == usd("-100")


class TestMirror:
    RULES = (
        DealerRule("real\\standard", "XAUUSD", 30),
        DealerRule("real\\standard", "*", 10),
        DealerRule("real\\pro", "*", 0, True, "LP-Prime"),
    )

    def test_first_matching_rule_applies_and_groups_ignore_case(self) -> None:
        assert rule_for(self.RULES, "REAL\\Standard", "XAUUSD").markup_points == 30
        assert rule_for(self.RULES, "real\\standard", "EURUSD").markup_points == 10
        assert rule_for(self.RULES, "demo\\x", "EURUSD") == DealerRule("*")

    def test_a_markup_or_a_route_other_than_mirrored_is_flagged(self) -> None:
        checks = check_mirror(
            self.RULES,
            [
                Observed("real\\standard", "EURUSD", "", D(10), D(10)),
                Observed("real\\standard", "XAUUSD", "", D(30), D(30)),
                Observed("real\\standard", "XAUUSD", "", D(20), D(20)),
                Observed("real\\pro", "EURUSD", "", D(0), D(0)),
            ],
        )
        flags = {(c.group, c.symbol): (c.markup_differs, c.routing_differs) for c in checks}
        assert flags == {
            ("real\\pro", "EURUSD"): (False, True),
            ("real\\standard", "EURUSD"): (False, False),
            ("real\\standard", "XAUUSD"): (True, False),
        }
        [gold] = [c for c in checks if c.symbol == "XAUUSD"]
        assert (gold.observed_min_points, gold.observed_max_points, gold.deals) == (D(20), D(30), 2)
        assert not check_mirror(
            self.RULES, [Observed("real\\standard", "XAUUSD", "", D(20), D(20))], D(10)
        )[0].flagged

    def test_an_a_book_rule_naming_no_gateway_takes_any_but_none(self) -> None:
        rules = [DealerRule("real\\*", "*", 0, True, "")]
        lp = Observed("real\\x", "EURUSD", "LP-2", D(0), D(0))
        kept = Observed("real\\x", "GBPUSD", "", D(0), D(0))
        assert [c.routing_differs for c in check_mirror(rules, [lp, kept])] == [False, True]

    def test_floating_b_book_is_minus_the_clients_floating_profit(self) -> None:
        assert floating_b_book([(D("100"), "USD"), (D("-30.5"), "USD"), (D(5), "EUR")]) == {
            "USD": D("-69.5"),
            "EUR": D(-5),
        }


prices = st.decimals(min_value=D("0.5"), max_value=D("5"), places=5)
points = st.integers(min_value=0, max_value=500)


@settings(max_examples=60, deadline=None)
@given(
    bid=prices,
    raw_spread=points,
    markup=points,
    action=st.sampled_from([BUY, SELL]),
    volume=st.integers(1, 10**6),
    lp_slip=st.integers(-50, 50),
    rate=st.decimals(min_value=D("0.01"), max_value=D(200), places=4),
)
def test_market_fills_show_their_markup_and_the_a_book_cost_adds_up(
    bid: Decimal,
    raw_spread: int,
    markup: int,
    action: int,
    volume: int,
    lp_slip: int,
    rate: Decimal,
) -> None:
    point = D("0.00001")
    ask = bid + raw_spread * point
    side = 1 if action == BUY else -1
    raw = ask if action == BUY else bid
    price = raw + side * markup * point
    gateway_price = raw + side * lp_slip * point
    facts = DealFacts(9, 1, "EURUSD", action, ENTRY_IN, 5, D(100000), volume, price, "USD",
                      market_bid=bid, market_ask=ask, gateway="LP", price_gateway=gateway_price,
                      rate_profit=rate, order_type=action)  # fmt: skip
    r = deal_revenue(facts)
    assert r.markup_points == markup
    assert r.spread_points == raw_spread + 2 * markup
    assert r.spread_points == captured_spread_points(action, price, bid, ask, 5)
    assert r.markup_points == captured_markup_points(action, price, bid, ask, 5)
    assert r.gateway_slippage_points == lp_slip
    assert r.markup is not None and r.a_book_cost is not None and r.spread_captured is not None
    assert r.markup.amount >= 0 and r.spread_captured.amount >= 0
    units = facts.lots * facts.contract_size
    # What the LP cost against the client = its slippage against the raw price - the markup kept.
    assert r.a_book_cost.amount == lp_slip * point * units * rate - r.markup.amount
    assert r.b_book_pnl.amount == 0


@settings(max_examples=40, deadline=None)
@given(
    profit=st.decimals(min_value=D(-(10**6)), max_value=D(10**6), places=2),
    gateway=st.sampled_from(["", "LP-Prime"]),
    entry=st.sampled_from([ENTRY_IN, ENTRY_OUT, ENTRY_INOUT, ENTRY_OUT_BY]),
)
def test_b_book_pnl_is_the_inverse_of_the_clients_and_nothing_on_the_a_book(
    profit: Decimal, gateway: str, entry: int
) -> None:
    r = deal_revenue(
        DealFacts(1, 1, "X", SELL, entry, 2, D(1), 100, D(10), "USD", profit=profit,
                  gateway=gateway, price_gateway=D(10) if gateway else None)
    )  # fmt: skip
    assert r.b_book_pnl.amount == (0 if gateway else -profit)
