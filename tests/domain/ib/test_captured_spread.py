"""Golden cases, computed by hand: "percent of spread / markup" rules price the spread a deal
actually captured (its Price against its MarketBid/MarketAsk, `domain.revenue`) when the deal
carries its raw quote, and the symbol's fixed spread otherwise (the existing cases).

EURUSD: contract 100,000, 5 digits (a point is 0.00001, a point of a lot is 1 USD); fixed
spread 12 points, markup 4 (builders.SYMBOLS). A spread captured, in points per round trip, is
2 x (client price - raw mid) / point on the deal's side; a markup, 2 x (client price - raw
price of its side) / point; half of either is paid per market side, as for the fixed figures.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from domain.errors import InvalidInput
from tests.domain.ib.builders import SYMBOLS, T0, amounts, deal, document, plan, rows, version

IN, OUT, OUT_BY = 0, 1, 3
BUY: dict[str, Any] = {"Action": 0}
# Buy 1.00 at 1.10010 against raw 1.09995 / 1.10005 (mid 1.10000): 2 x 10 = 20 points of
# spread, 5 points of markup over the Ask (10 per round trip). Sell 1.00 at 1.10085 against
# 1.10095 / 1.10105 (mid 1.10100): 2 x 15 = 30 points of spread, 10 under the Bid (20).
ENTRY: dict[str, Any] = {"MarketBid": "1.09995", "MarketAsk": "1.10005"}
EXIT: dict[str, Any] = {"MarketBid": "1.10095", "MarketAsk": "1.10105"}


def round_trip(**exit_quote: Any) -> list[dict[str, Any]]:
    return [
        deal(1, T0 + 100, IN, 10000, "1.10010", **BUY, **ENTRY),
        deal(2, T0 + 900, OUT, 10000, "1.10085", **(exit_quote or EXIT)),
    ]


SPREAD_50 = {"basis": "spread_percent", "rate": "50"}
MARKUP_25 = {"basis": "spread_percent", "rate": "25", "of": "markup"}


def test_per_side_each_deal_pays_half_the_spread_it_captured() -> None:
    found = rows(document(round_trip(), plan(version(SPREAD_50, counting="per_side"))))
    # IN: 0.5 x 20 points x 1 USD x 1 lot = 10 USD, 50% = 5.00 (the fixed 12 would give 3.00).
    # OUT: 0.5 x 30 = 15 USD, 50% = 7.50.
    assert amounts(found) == [(1, "L1", D("5.00")), (2, "L1", D("7.50"))]
    note = found[0].parts[0].note
    assert note.startswith("20 spread points (captured: Price 1.10010 vs MarketBid/MarketAsk")
    assert "1.09995/1.10005" in note


def test_round_turn_the_close_pays_a_whole_spread_at_what_it_captured() -> None:
    found = rows(document(round_trip(), plan(version(SPREAD_50))))
    # Only the close is counted; it carries its own half and its opening's: 1 x 30 points =
    # 30 USD, 50% = 15.00 (the close's capture stands for the opening's half too).
    assert amounts(found) == [(2, "L1", D("15.00"))]


def test_a_markup_rule_pays_the_markup_the_deal_captured() -> None:
    found = rows(document(round_trip(), plan(version(MARKUP_25, counting="per_side"))))
    # IN: 0.5 x 10 = 5 USD, 25% = 1.25. OUT: 0.5 x 20 = 10 USD, 25% = 2.50.
    assert amounts(found) == [(1, "L1", D("1.25")), (2, "L1", D("2.50"))]


def test_a_fill_better_than_the_raw_mid_captured_nothing() -> None:
    # Sold at 1.10105, above the mid 1.10100: the client paid no spread on that side.
    improved: dict[str, Any] = {"MarketBid": "1.10095", "MarketAsk": "1.10105", "Price": "1.10105"}
    found = rows(document(round_trip(**improved), plan(version(SPREAD_50, counting="per_side"))))
    assert amounts(found) == [(1, "L1", D("5.00")), (2, "L1", D("0.00"))]


def test_a_deal_without_its_raw_quote_keeps_the_symbols_fixed_spread() -> None:
    deals = [
        deal(1, T0 + 100, IN, 10000, "1.10010", **BUY, **ENTRY),
        deal(2, T0 + 900, OUT, 10000, "1.10085"),  # no MarketBid/MarketAsk
    ]
    found = rows(document(deals, plan(version(SPREAD_50, counting="per_side"))))
    # IN captured 20: 5.00. OUT: the fixed 12 points, 0.5 x 12 = 6 USD, 50% = 3.00.
    assert amounts(found) == [(1, "L1", D("5.00")), (2, "L1", D("3.00"))]
    assert found[1].parts[0].note.startswith("12 spread points x 0.00001")


def test_a_close_by_crossed_no_market_and_keeps_the_fixed_spread() -> None:
    deals = [
        deal(1, T0 + 100, IN, 10000, "1.10010", position=1, **BUY, **ENTRY),
        deal(2, T0 + 200, IN, 10000, "1.10190", position=2, **EXIT),
        deal(3, T0 + 400, OUT_BY, 10000, "1.10200", position=1, PositionByID="2", **EXIT),
        deal(4, T0 + 400, OUT_BY, 10000, "1.10000", position=2, PositionByID="1", **BUY, **EXIT),
    ]
    found = rows(document(deals, plan(version(SPREAD_50))))
    # Round turn: each OUT_BY carries only its opening's half, at the fixed 12 points:
    # 0.5 x 12 = 6 USD, 50% = 3.00 each.
    assert amounts(found) == [(3, "L1", D("3.00")), (4, "L1", D("3.00"))]


def test_a_floating_spread_symbol_is_priced_from_its_deals() -> None:
    # XAUUSD: contract 100, 2 digits, no fixed spread. Buy 1.00 at 2000.30 against 2000.00 /
    # 2000.20 (mid 2000.10): 2 x 20 = 40 points; 0.5 x 40 x 0.01 x 100 x 1 lot = 20 USD, 10% =
    # 2.00.
    symbols = SYMBOLS | {"XAUUSD": SYMBOLS["XAUUSD"] | {"profit_currency": "USD"}}
    gold = {"Symbol": "XAUUSD", "MarketBid": "2000.00", "MarketAsk": "2000.20"}
    deals = [deal(1, T0 + 100, IN, 10000, "2000.30", position=9, **BUY, **gold)]
    rule = {"basis": "spread_percent", "rate": "10"}
    doc = document(deals, plan(version(rule, counting="per_side")), symbols=symbols)
    assert amounts(rows(doc)) == [(1, "L1", D("2.00"))]
    # Without its quote the deal still has no spread to price: refused, as before.
    bare = [deal(1, T0 + 100, IN, 10000, "2000.30", position=9, Symbol="XAUUSD", **BUY)]
    with pytest.raises(InvalidInput, match="XAUUSD: a spread rule needs spread_points"):
        rows(document(bare, plan(version(rule, counting="per_side")), symbols=symbols))
