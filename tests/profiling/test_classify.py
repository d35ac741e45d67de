"""Classification: the first rule that holds names the profile, its conditions explain it."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from domain.profiling import AccountMetrics, Book, Profile, Thresholds, classify

D = Decimal

RETAIL = AccountMetrics(
    login=7,
    trades=40,
    entries=40,
    net_profit=D(-500),
    gross_profit=D(900),
    gross_loss=D(1300),
    win_rate=D("0.8"),
    profit_factor=D(900) / D(1300),
    hold_mean_s=D(3000),
    hold_p10_s=D(300),
    hold_median_s=D(1800),
    hold_p90_s=D(9000),
    short_hold_share=D(0),
    short_win_share=D(0),
    trades_per_day=D(12),
    lots_mean=D("0.5"),
    lots_cv=D("0.4"),
    max_open=1,
    expert_share=D(0),
    stale_quote_share=D("0.02"),
    markout_spreads=D("0.01"),
    after_jump_share=D("0.02"),
    around_jump_share=D("0.05"),
    hedge_share=D(0),
)


def test_a_losing_long_hold_flow_stays_b_book_and_says_why() -> None:
    result = classify(RETAIL)
    assert (result.profile, result.book, result.a_share) == (
        Profile.LOSING_DIRECTIONAL,
        Book.B,
        D(0),
    )
    assert "net_profit = -500 <= 0: yes" in result.explanation


def test_latency_arbitrage_names_its_metrics_and_thresholds() -> None:
    arbitrage = replace(
        RETAIL,
        stale_quote_share=D("0.9"),
        hold_median_s=D("1.6"),
        trades_per_day=D(150),
        net_profit=D(900),
        profit_factor=D(4),
    )
    result = classify(arbitrage)
    assert result.profile is Profile.LATENCY_ARBITRAGE and result.book is Book.A
    assert [c.metric for c in result.conditions] == ["stale_quote_share", "hold_median_s"]
    assert "stale_quote_share = 0.9 >= 0.5: yes" in result.explanation
    assert "hold_median_s = 1.6 <= 30: yes" in result.explanation
    # The same short holds without the stale-quote wins: scalping, not arbitrage.
    scalping = replace(arbitrage, stale_quote_share=D("0.05"), net_profit=D(-10))
    result = classify(scalping)
    assert result.profile is Profile.SCALPING and result.book is Book.B
    assert "trades_per_day = 150 >= 20: yes" in result.explanation


def test_the_other_profiles_and_their_books() -> None:
    assert classify(replace(RETAIL, hedge_share=D("0.95"))).profile is Profile.HEDGING
    news = classify(replace(RETAIL, after_jump_share=D("0.8"), hold_median_s=D(400)))
    assert (news.profile, news.book, news.a_share) == (Profile.NEWS_TRADING, Book.HYBRID, D("0.5"))
    grid = classify(replace(RETAIL, max_open=8, lots_cv=D(0)))
    assert (grid.profile, grid.book) == (Profile.GRID_EA, Book.B)
    swing = classify(replace(RETAIL, net_profit=D(2000), profit_factor=D(2)))
    assert (swing.profile, swing.book) == (Profile.PROFITABLE_DIRECTIONAL, Book.A)
    mild = classify(replace(RETAIL, net_profit=D(200), profit_factor=D("1.3")))
    assert (mild.profile, mild.book) == (Profile.PROFITABLE_DIRECTIONAL, Book.HYBRID)


def test_too_few_trades_and_large_size() -> None:
    young = classify(replace(RETAIL, trades=4))
    assert young.profile is Profile.INSUFFICIENT_DATA and young.book is Book.B
    assert "trades = 4 <= 9: yes" in young.explanation
    large = classify(replace(RETAIL, lots_mean=D(12)))
    assert large.profile is Profile.LOSING_DIRECTIONAL and large.book is Book.A
    assert "12 lots >= 10" in large.explanation


def test_thresholds_are_configuration() -> None:
    strict = Thresholds(latency_stale_share=D("0.95"))
    arbitrage = replace(
        RETAIL, stale_quote_share=D("0.9"), hold_median_s=D(2), trades_per_day=D(50)
    )
    assert classify(arbitrage).profile is Profile.LATENCY_ARBITRAGE
    assert classify(arbitrage, strict).profile is Profile.SCALPING
