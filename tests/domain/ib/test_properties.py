"""Properties over random trees, plans and deals: the levels never share out more than the pool
or the top level's amount, nothing is negative, and the rows depend on the deals alone (not on
their order, not on deals after them, not on being computed again)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal, getcontext
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ib.rows import Row
from tests.domain.ib.builders import T0, deal, document, per_lot, plan, rows, version

money = st.decimals(min_value=0, max_value=20, places=2)


@st.composite
def trade_deals(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Up to 12 deals over 3 positions, with any entry: the calculation does not rely on the
    deals making a consistent account, only on each deal's own fields."""
    found = []
    for ticket in range(1, draw(st.integers(1, 12)) + 1):
        entry = draw(st.sampled_from([0, 1, 2, 3]))
        volume = draw(st.integers(2, 30000))
        closed = draw(st.integers(1, volume - 1)) if entry == 2 else volume
        found.append(
            deal(
                ticket,
                T0 + draw(st.integers(0, 3000)),
                entry,
                volume,
                f"1.1{draw(st.integers(0, 999)):03d}0",
                position=draw(st.integers(1, 3)),
                Action=draw(st.sampled_from([0, 1])),
                VolumeClosed=str(closed if entry != 0 else 0),
                Commission=str(-draw(money)),
            )
        )
    return found


@st.composite
def plans(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A chain of 1 to 5 levels, each on its own plan; the first plan picks the tier model."""
    levels = draw(st.integers(1, 5))
    common: dict[str, Any] = {
        "counting": draw(st.sampled_from(["round_turn", "per_side"])),
        "min_hold_seconds": draw(st.sampled_from([0, 60, 600])),
    }
    found = []
    for level in range(levels):
        rules = [per_lot(str(draw(money)))]
        if draw(st.booleans()):
            rules.append({"basis": "commission_percent", "rate": str(draw(money))})
        found.append(plan(version(*rules, **common)))
    if draw(st.booleans()):
        percents = draw(st.lists(st.integers(0, 100), min_size=1, max_size=5))
        shares = [Decimal(p) / 100 for p in percents]
        if sum(shares) <= 1:
            first = found[0]["versions"][0]
            first["tiers"] = {"model": "pool", "shares": [str(s) for s in shares]}
    return found


def last_digit(value: Decimal) -> Decimal:
    """One unit in the 28th significant digit of `value`: the rounding of one product."""
    return Decimal(1).scaleb(value.adjusted() - getcontext().prec + 1)


def by_deal(found: list[Row]) -> dict[int, list[Row]]:
    grouped: dict[int, list[Row]] = defaultdict(list)
    for row in found:
        grouped[row.deal].append(row)
    return grouped


@settings(max_examples=150, deadline=None)
@given(trade_deals(), plans())
def test_levels_share_out_at_most_the_pool_or_exactly_the_top_amount(
    deals: list[dict[str, Any]], chain: list[dict[str, Any]]
) -> None:
    for level_rows in by_deal(rows(document(deals, *chain))).values():
        paid = sum(r.earned for r in level_rows)
        if level_rows[0].model == "pool":
            pool = level_rows[0].own
            assert all(r.own == pool and r.earned == pool * (r.share or 0) for r in level_rows)
            # Each level's product is rounded to the context's 28 digits on its own, so the
            # sum may differ from pool x (sum of shares) in the last digit, once per level.
            assert paid <= pool + len(level_rows) * last_digit(pool)
        else:
            # The top level's own amount, the budget the whole chain shares.
            assert len(level_rows) == len(chain)
            assert paid == level_rows[-1].own


@settings(max_examples=150, deadline=None)
@given(trade_deals(), plans())
def test_no_row_is_negative(deals: list[dict[str, Any]], chain: list[dict[str, Any]]) -> None:
    assert all(r.earned >= 0 and r.amount >= 0 for r in rows(document(deals, *chain)))


@settings(max_examples=100, deadline=None)
@given(trade_deals(), plans(), st.randoms(use_true_random=False))
def test_rows_do_not_depend_on_the_order_deals_are_given_in(
    deals: list[dict[str, Any]], chain: list[dict[str, Any]], random: Any
) -> None:
    shuffled = list(deals)
    random.shuffle(shuffled)
    assert rows(document(shuffled, *chain)) == rows(document(deals, *chain))


@settings(max_examples=100, deadline=None)
@given(trade_deals(), plans(), st.integers(0, 3000))
def test_recomputing_a_period_gives_the_same_rows_whatever_came_later(
    deals: list[dict[str, Any]], chain: list[dict[str, Any]], cut: int
) -> None:
    period = {"from": T0, "to": T0 + cut + 1}
    once = rows(document(deals, *chain, period=period))
    assert rows(document(deals, *chain, period=period)) == once
    earlier = [d for d in deals if d["Time"] <= T0 + cut]
    assert rows(document(earlier, *chain, period=period)) == once
