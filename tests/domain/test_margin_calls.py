"""Margin-call and stop-out proximity (`domain.exposure.margin_calls`): cases worked out by hand
from reference 5.2 (MarginLevel = Equity / Margin x 100; margin call at or below MarginCall,
stop out at or below MarginStopOut) and invariants over many accounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.exposure.margin_calls import (
    DEFAULT_HEADROOM,
    SO_MONEY,
    MarginLimits,
    MarginState,
    classify,
    margin_level,
    percent,
)

D = Decimal
PERCENT = MarginLimits(D(100), D(50))  # the simulator's default group lines


@pytest.mark.parametrize(
    ("equity", "margin", "level", "state"),
    [
        # 1000 margin: 1300 equity = 130 % > 100 x 1.2 = 120 %: fine.
        ("1300", "1000", "130.00", MarginState.FINE),
        # exactly 120 %: at the near line (inclusive).
        ("1200", "1000", "120.00", MarginState.NEAR_MARGIN_CALL),
        ("1100", "1000", "110.00", MarginState.NEAR_MARGIN_CALL),
        # exactly 100 %: a margin call (at or below).
        ("1000", "1000", "100.00", MarginState.MARGIN_CALL),
        ("750", "1000", "75.00", MarginState.MARGIN_CALL),
        # exactly 50 %: a stop out.
        ("500", "1000", "50.00", MarginState.STOP_OUT),
        # a negative equity is below every line.
        ("-10", "1000", "-1.00", MarginState.STOP_OUT),
        # 2 / 3 x 100 = 66.666…: shown 66.67, a margin call.
        ("2", "3", "66.67", MarginState.MARGIN_CALL),
    ],
)
def test_percent_mode_by_hand(equity: str, margin: str, level: str, state: MarginState) -> None:
    check = classify(D(equity), D(margin), PERCENT)
    assert check.state is state
    assert check.level is not None and percent(check.level) == level
    assert check.near_limit == D(120)


def test_no_margin_is_never_at_risk() -> None:
    for equity in ("0", "-500", "10"):
        check = classify(D(equity), D(0), PERCENT)
        assert (check.state, check.level, check.measure) == (MarginState.FINE, None, None)
    assert margin_level(D(100), D(0)) is None


def test_money_mode_compares_equity_with_the_lines() -> None:
    # MarginCall 1000, MarginStopOut 400 (deposit currency), headroom 0.5: near at 1500.
    money = MarginLimits(D(1000), D(400), SO_MONEY)
    margin = D(10)  # a level of thousands of %, which money mode ignores
    by_equity = {
        "1600": MarginState.FINE,
        "1500": MarginState.NEAR_MARGIN_CALL,
        "1000": MarginState.MARGIN_CALL,
        "400": MarginState.STOP_OUT,
    }
    for equity, state in by_equity.items():
        check = classify(D(equity), margin, money, D("0.5"))
        assert (check.state, check.measure) == (state, D(equity))
    assert check.level == D(4000)


def test_headroom_zero_and_lines_out_of_order() -> None:
    assert classify(D(1010), D(1000), PERCENT, D(0)).state is MarginState.FINE
    # A stop-out line above the margin-call line still stops out.
    odd = MarginLimits(D(50), D(80))
    assert classify(D(700), D(1000), odd).state is MarginState.STOP_OUT
    with pytest.raises(ValueError, match="headroom"):
        classify(D(1), D(1), PERCENT, D("-0.1"))


money_amounts = st.decimals(min_value=-(10**6), max_value=10**7, places=2)
lines = st.decimals(min_value=0, max_value=1000, places=2)
headrooms = st.decimals(min_value=0, max_value=2, places=2)


@settings(max_examples=150, deadline=None)
@given(
    money_amounts,
    money_amounts,
    st.decimals(min_value="0.01", max_value=10**6, places=2),
    lines,
    lines,
    st.sampled_from([0, 1]),
    headrooms,
)
def test_the_state_never_improves_as_equity_falls(
    a: Decimal,
    b: Decimal,
    margin: Decimal,
    call: Decimal,
    stop: Decimal,
    mode: int,
    headroom: Decimal,
) -> None:
    low, high = sorted((a, b))
    limits = MarginLimits(call, stop, mode)
    worse = classify(low, margin, limits, headroom)
    better = classify(high, margin, limits, headroom)
    assert worse.state.severity >= better.state.severity
    # Stop out implies a margin call or worse; a margin call implies near or worse: whichever
    # line the measure is at or below, the state is at least that line's.
    for check in (worse, better):
        assert check.measure is not None
        if check.measure <= limits.stop_out:
            assert check.state is MarginState.STOP_OUT
        if check.measure <= limits.margin_call:
            assert check.state.severity >= MarginState.MARGIN_CALL.severity
        if check.measure <= check.near_limit:
            assert check.state.severity >= MarginState.NEAR_MARGIN_CALL.severity
        if check.measure > max(limits.stop_out, check.near_limit):
            assert check.state is MarginState.FINE


def test_the_default_headroom_is_twenty_percent() -> None:
    assert DEFAULT_HEADROOM == D("0.2")
