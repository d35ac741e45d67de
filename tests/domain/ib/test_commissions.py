"""Hand-computed commission cases: volume counted from deals (netting, hedging, partial close,
reversal, close-by), the tier models, the anti-scalping rules, plan versions, CPA, the bases,
conversion and rounding. Each expected figure is worked out in the comment beside it."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from pydantic import ValidationError

from domain.errors import InvalidInput
from domain.ib.commissions import PreviewInput, periods, preview
from tests.domain.ib.builders import (
    T0,
    amounts,
    deal,
    deposit,
    document,
    per_lot,
    plan,
    rows,
    version,
)

IN, OUT, INOUT, OUT_BY = 0, 1, 2, 3
BUY: dict[str, Any] = {"Action": 0}


def netting_deals() -> list[dict[str, object]]:
    """Reference 1.5 A: buy 1.0, sell 0.4 (partial close), sell 1.5 (reversal: 0.6 closed,
    0.9 opened short), buy 0.9 (closes the short). One position, 7001, all along."""
    return [
        deal(1, T0 + 100, IN, 10000, **BUY),
        deal(2, T0 + 200, OUT, 4000, "1.10500"),
        deal(3, T0 + 300, INOUT, 15000, "1.11000", VolumeClosed="6000"),
        deal(4, T0 + 400, OUT, 9000, "1.10800", **BUY),
    ]


class TestNetting:
    def test_round_turn_pays_each_closed_lot_once(self) -> None:
        found = rows(document(netting_deals(), plan(version(per_lot("10")))))
        # The IN opens and pays nothing yet (no row). Closed: 0.4 (OUT), 0.6 (INOUT's close),
        # 0.9 (OUT): 10 x 0.4 = 4, 10 x 0.6 = 6, 10 x 0.9 = 9; total 19 = 10 x 1.9 opened lots.
        assert amounts(found) == [(2, "L1", D("4.00")), (3, "L1", D("6.00")), (4, "L1", D("9.00"))]
        assert [r.volume for r in found] == [D("0.4"), D("0.6"), D("0.9")]

    def test_reversal_is_a_close_and_an_open(self) -> None:
        found = rows(document(netting_deals(), plan(version(per_lot("10")))))
        reversal = next(r for r in found if r.deal == 3)
        assert reversal.volume_why == (
            "INOUT: 0.60 closed + 0.90 opened; round turn counts closes: 0.60"
        )

    def test_per_side_pays_opens_and_closes(self) -> None:
        doc = document(netting_deals(), plan(version(per_lot("5"), counting="per_side")))
        # IN 1.0 x 5 = 5; OUT 0.4 x 5 = 2; INOUT (0.6 + 0.9) x 5 = 7.5; OUT 0.9 x 5 = 4.5.
        # Total 19: "$5 per side" pays what "$10 round turn" pays once every lot is closed.
        assert amounts(rows(doc)) == [
            (1, "L1", D("5.00")),
            (2, "L1", D("2.00")),
            (3, "L1", D("7.50")),
            (4, "L1", D("4.50")),
        ]
        assert rows(doc)[2].volume_why == ("INOUT: 0.60 closed + 0.90 opened; per side: 1.50")


def hedging_deals() -> list[dict[str, object]]:
    """Reference 1.5 B: buy 1.0 (P1), sell 0.5 (P2), close 0.4 of P1, close P1 by P2 for 0.5
    (two OUT_BY deals, one per position), close the last 0.1 of P1."""
    return [
        deal(1, T0 + 100, IN, 10000, position=1, **BUY),
        deal(2, T0 + 200, IN, 5000, "1.10200", position=2),
        deal(3, T0 + 300, OUT, 4000, "1.10500", position=1),
        deal(4, T0 + 400, OUT_BY, 5000, "1.10200", position=1, PositionByID="2"),
        deal(5, T0 + 400, OUT_BY, 5000, "1.10000", position=2, PositionByID="1", **BUY),
        deal(6, T0 + 500, OUT, 1000, "1.10600", position=1),
    ]


class TestHedging:
    def test_partial_close_and_close_by_count_each_positions_closed_volume(self) -> None:
        found = rows(document(hedging_deals(), plan(version(per_lot("10")))))
        # Opened 1.0 + 0.5 = 1.5 lots, each paid once when it closes: 0.4 x 10 = 4 (partial
        # close), 0.5 x 10 = 5 for each OUT_BY (each is its own position's exit), 0.1 x 10 = 1.
        assert amounts(found) == [
            (3, "L1", D("4.00")),
            (4, "L1", D("5.00")),
            (5, "L1", D("5.00")),
            (6, "L1", D("1.00")),
        ]
        assert found[1].volume_why == (
            "OUT_BY: 0.50 closed by position 2; round turn counts closes: 0.50"
        )

    def test_per_side_counts_close_by_as_an_exit_never_an_entry(self) -> None:
        found = rows(document(hedging_deals(), plan(version(per_lot("5"), counting="per_side"))))
        # Sides: IN 1.0 -> 5, IN 0.5 -> 2.5, OUT 0.4 -> 2, OUT_BY 0.5 -> 2.5 twice, OUT 0.1
        # -> 0.5: 15 in all, the same as 10 round turn on 1.5 lots.
        assert [r.amount for r in found] == [
            D("5.00"),
            D("2.50"),
            D("2.00"),
            D("2.50"),
            D("2.50"),
            D("0.50"),
        ]

    def test_close_by_crosses_no_spread(self) -> None:
        rule = {"basis": "spread_percent", "rate": "50"}
        found = rows(document(hedging_deals(), plan(version(rule))))
        # One lot's spread is 12 USD; a round-turn close carries its opening's half spread plus
        # its own (a market close: another half, a close-by: none). 50% of:
        # OUT 0.4: 0.4 x (0.5 + 0.5) x 12 = 4.8 -> 2.40
        # OUT_BY 0.5 each: 0.5 x (0.5 + 0) x 12 = 3 -> 1.50, twice
        # OUT 0.1: 0.1 x 1 x 12 = 1.2 -> 0.60
        # Total 6.00 = 50% x the 12 USD the client paid (1.5 lots opened at half a spread, 9,
        # plus 0.5 lots closed at market, 3).
        assert [r.amount for r in found] == [D("2.40"), D("1.50"), D("1.50"), D("0.60")]


class TestAntiScalping:
    def test_minimum_hold_is_judged_per_opening_first_in_first_out(self) -> None:
        deals = [
            deal(1, T0 + 100, IN, 5000, **BUY),
            deal(2, T0 + 200, IN, 5000, **BUY),
            deal(3, T0 + 230, OUT, 10000, "1.10100"),
        ]
        found = rows(document(deals, plan(version(per_lot("10"), min_hold_seconds=60))))
        # The OUT closes deal 1's 0.5 (held 230 - 100 = 130 s >= 60: counted) and deal 2's 0.5
        # (held 230 - 200 = 30 s < 60: not counted): 10 x 0.5 = 5.
        assert amounts(found) == [(3, "L1", D("5.00"))]
        assert found[0].volume_why == (
            "OUT: 1.00 closed; 0.50 held 30 s < 60 s: not counted; round turn counts closes: 0.50"
        )

    def test_an_excluded_exit_still_leaves_a_row_that_says_why(self) -> None:
        deals = [deal(1, T0 + 100, IN, 10000, **BUY), deal(2, T0 + 159, OUT, 10000, "1.10100")]
        found = rows(document(deals, plan(version(per_lot("10"), min_hold_seconds=60))))
        # Held 59 s < 60: 10 x 0 = 0.
        assert amounts(found) == [(2, "L1", D("0.00"))]
        assert "1.00 held 59 s < 60 s: not counted" in found[0].volume_why

    def test_per_side_pays_the_entry_and_withholds_the_early_exit(self) -> None:
        deals = [deal(1, T0 + 100, IN, 10000, **BUY), deal(2, T0 + 110, OUT, 10000, "1.10100")]
        doc = document(deals, plan(version(per_lot("5"), counting="per_side", min_hold_seconds=60)))
        # Entry 1.0 x 5 = 5 (its hold is not known when it is paid); exit held 10 s: 0.
        assert amounts(rows(doc)) == [(1, "L1", D("5.00")), (2, "L1", D("0.00"))]

    def test_minimum_points(self) -> None:
        deals = [
            deal(1, T0 + 100, IN, 10000, **BUY),
            deal(2, T0 + 900, OUT, 5000, "1.10004"),
            deal(3, T0 + 900, OUT, 5000, "1.10005"),
        ]
        found = rows(document(deals, plan(version(per_lot("10"), min_points="5"))))
        # |1.10004 - 1.10000| / 0.00001 = 4 points < 5: 0; |1.10005 - 1.10000| = 5 points: 0.5
        # x 10 = 5.
        assert amounts(found) == [(2, "L1", D("0.00")), (3, "L1", D("5.00"))]
        assert "0.50 moved 4 points < 5: not counted" in found[0].volume_why

    def test_an_opening_outside_the_document_is_not_held_against_the_exit(self) -> None:
        deals = [deal(2, T0 + 100, OUT, 10000)]
        found = rows(document(deals, plan(version(per_lot("10"), min_hold_seconds=60))))
        assert amounts(found) == [(2, "L1", D("10.00"))]
        assert "1.00 opened before the document: not checked" in found[0].volume_why


def one_lot_round_trip() -> list[dict[str, object]]:
    return [deal(1, T0 + 100, IN, 10000, **BUY), deal(2, T0 + 900, OUT, 10000, "1.10100")]


class TestTiers:
    def test_differential_three_levels(self) -> None:
        doc = document(
            one_lot_round_trip(),
            plan(version(per_lot("4"))),
            plan(version(per_lot("7"))),
            plan(version(per_lot("10"))),
        )
        # Reference 3.3 (b): L1 4; L2 7 - 4 = 3; L3 10 - 7 = 3; together 10, the top rate.
        assert amounts(rows(doc)) == [
            (2, "L1", D("4.00")),
            (2, "L2", D("3.00")),
            (2, "L3", D("3.00")),
        ]

    def test_differential_caps_a_level_at_the_rate_above_it(self) -> None:
        doc = document(
            one_lot_round_trip(),
            plan(version(per_lot("4"))),
            plan(version(per_lot("9"))),
            plan(version(per_lot("7"))),
            plan(version(per_lot("10"))),
        )
        # Own rates 4, 9, 7, 10; capped from the top down: L4 10, L3 7, L2 min(9, 7) = 7,
        # L1 4. Earned: L1 4, L2 7 - 4 = 3, L3 7 - 7 = 0, L4 10 - 7 = 3; total 10.
        found = rows(doc)
        assert [r.amount for r in found] == [D("4.00"), D("3.00"), D("0.00"), D("3.00")]
        assert (found[1].own, found[1].capped, found[1].below) == (D(9), D(7), D(4))

    def test_pool_shares(self) -> None:
        pool = {"model": "pool", "shares": ["0.5", "0.3", "0.1"]}
        deals = [deal(1, T0 + 100, IN, 20000, **BUY), deal(2, T0 + 900, OUT, 20000, "1.10100")]
        doc = document(
            deals,
            plan(version(per_lot("10"), tiers=pool)),
            plan(version(per_lot("99"))),
            plan(version(per_lot("99"))),
            plan(version(per_lot("99"))),
        )
        # Pool = 10 x 2 lots = 20 from L1's plan (the others' rates play no part):
        # L1 0.5 x 20 = 10, L2 0.3 x 20 = 6, L3 0.1 x 20 = 2; L4 has no share (no row);
        # 0.1 x 20 = 2 stays with the broker.
        assert amounts(rows(doc)) == [
            (2, "L1", D("10.00")),
            (2, "L2", D("6.00")),
            (2, "L3", D("2.00")),
        ]

    def test_differential_needs_one_plan_currency_along_the_chain(self) -> None:
        doc = document(
            one_lot_round_trip(),
            plan(version(per_lot("4"))),
            plan(version(per_lot("7"), currency="EUR")),
        )
        with pytest.raises(InvalidInput, match="paid differentially"):
            rows(doc)


class TestPlanVersions:
    def test_plan_change_mid_period(self) -> None:
        change = T0 + 1000
        deals = [
            deal(1, T0 + 100, IN, 10000, **BUY),
            deal(2, change - 1, OUT, 5000, "1.10100"),
            deal(3, change, OUT, 5000, "1.10100"),
        ]
        doc = document(
            deals,
            plan(version(per_lot("10")), version(per_lot("12"), number=2, start=change)),
        )
        # Deal 2, one second before the change: version 1, 0.5 x 10 = 5.
        # Deal 3, at the change: version 2, 0.5 x 12 = 6.
        found = rows(doc)
        assert [(r.deal, r.version, r.amount) for r in found] == [
            (2, 1, D("5.00")),
            (3, 2, D("6.00")),
        ]

    def test_a_deal_before_any_version_is_refused(self) -> None:
        doc = document(one_lot_round_trip(), plan(version(per_lot("10"), start=T0 + 500)))
        with pytest.raises(InvalidInput, match="no version in force"):
            rows(doc)


CPA = {"basis": "cpa", "rate": "200", "min_deposit": "100"}


class TestCpa:
    def test_first_deposit_pays_once(self) -> None:
        deals = [deposit(1, T0 + 100, "500.00"), deposit(2, T0 + 200, "5000.00")]
        doc = document(deals, plan(version(dict(CPA, rate="100"))), plan(version(CPA)))
        # Deal 1 is the first deposit: L1 100, L2 200 - 100 = 100. Deal 2 pays nothing.
        assert amounts(rows(doc)) == [(1, "L1", D("100.00")), (1, "L2", D("100.00"))]

    def test_first_deposit_below_the_minimum_pays_nothing_and_later_ones_do_not_count(
        self,
    ) -> None:
        deals = [deposit(1, T0 + 100, "50.00"), deposit(2, T0 + 200, "500.00")]
        found = rows(document(deals, plan(version(CPA))))
        assert amounts(found) == [(1, "L1", D("0.00"))]
        assert found[0].parts[0].note == "deposit 50.00 USD < minimum 100"

    def test_deposit_compared_in_the_plan_currency(self) -> None:
        rates = [{"from": "EUR", "to": "USD", "rate": "1.1"}]
        deals = [deposit(1, T0 + 100, "91.00")]
        doc = document(deals, plan(version(CPA)), currency="EUR", rates=rates)
        # 91 EUR x 1.1 = 100.1 USD >= 100: 200.
        assert amounts(rows(doc)) == [(1, "L1", D("200.00"))]


class TestBases:
    def test_percent_of_the_brokers_commission_in_the_plans_currency(self) -> None:
        rates = [{"from": "EUR", "to": "USD", "rate": "1.1"}]
        deals = [
            deal(1, T0 + 100, IN, 10000, Commission="-3.50", **BUY),
            deal(2, T0 + 900, OUT, 10000, "1.10100", Commission="-3.50"),
        ]
        rule = {"basis": "commission_percent", "rate": "40"}
        doc = document(deals, plan(version(rule)), currency="EUR", rates=rates)
        # Every deal's own commission, whatever the counting: 40% x 3.50 EUR x 1.1 = 1.54 USD.
        assert amounts(rows(doc)) == [(1, "L1", D("1.54")), (2, "L1", D("1.54"))]

    def test_per_deal_and_markup_share_add_up(self) -> None:
        rules = (
            {"basis": "per_deal", "rate": "0.50"},
            {"basis": "spread_percent", "rate": "25", "of": "markup"},
        )
        found = rows(document(one_lot_round_trip(), plan(version(*rules))))
        # Per deal 0.50 x 1 closing deal; markup 4 points x 0.00001 x 100000 = 4 USD a lot,
        # round trip of 1 lot: 25% x 4 = 1; 0.50 + 1 = 1.50.
        assert amounts(found) == [(2, "L1", D("1.50"))]

    def test_first_matching_rule_wins(self) -> None:
        rules = (per_lot("3", symbols=["XAU*"]), per_lot("10", paths=["*"]))
        gold = {"Symbol": "XAUUSD", "Price": "2000.00"}
        deals = [
            *one_lot_round_trip(),
            deal(3, T0 + 100, IN, 10000, position=9, **gold, **BUY),
            deal(4, T0 + 900, OUT, 10000, position=9, **gold),
        ]
        # EURUSD: only "*" matches, 10 x 1 = 10. XAUUSD: "XAU*" comes first, 3 x 1 = 3.
        assert amounts(rows(document(deals, plan(version(*rules))))) == [
            (2, "L1", D("10.00")),
            (4, "L1", D("3.00")),
        ]

    def test_notional_rate_on_another_contract_size(self) -> None:
        gold = {"Symbol": "XAUUSD", "Price": "2000.00"}
        deals = [
            deal(3, T0 + 100, IN, 10000, position=9, **gold, **BUY),
            deal(4, T0 + 900, OUT, 10000, position=9, **gold),
        ]
        doc = document(deals, plan(version(per_lot("10", per_units="100000"))))
        # 1 lot of XAUUSD is 100 oz: 10 x 1 x 100 / 100,000 = 0.01.
        assert amounts(rows(doc)) == [(4, "L1", D("0.01"))]


class TestConversionAndRounding:
    def test_round_half_up_once_per_row_after_conversion(self) -> None:
        rates = [{"from": "USD", "to": "EUR", "rate": "0.9"}]
        deals = [deal(1, T0 + 100, IN, 100, **BUY), deal(2, T0 + 900, OUT, 100, "1.10100")]
        doc = document(deals, plan(version(per_lot("0.5"), payout_currency="EUR")), rates=rates)
        # 0.5 x 0.01 lot = 0.005 USD x 0.9 = 0.0045 EUR -> 0.00 (half up at the cent);
        found = rows(doc)
        assert (found[0].earned, found[0].amount, found[0].currency) == (
            D("0.005"),
            D("0.00"),
            "EUR",
        )
        same = document(deals, plan(version(per_lot("0.5"))))
        # ... and in USD 0.005 -> 0.01 (half up; half even would give 0.00).
        assert rows(same)[0].amount == D("0.01")

    def test_a_missing_rate_is_refused(self) -> None:
        doc = document(one_lot_round_trip(), plan(version(per_lot("1"), payout_currency="EUR")))
        with pytest.raises(InvalidInput, match="no rate from USD to EUR"):
            rows(doc)


class TestPeriodsAndAttribution:
    def test_days_from_the_start_and_calendar_months(self) -> None:
        day = document([], plan(version(per_lot("1")))).period.model_copy(
            update={"length": "day", "end": T0 + 2 * 86400 + 5}
        )
        assert periods(day) == [
            (T0, T0 + 86400),
            (T0 + 86400, T0 + 2 * 86400),
            (T0 + 2 * 86400, T0 + 2 * 86400 + 5),
        ]
        # 2026-01-15 .. 2026-03-01: cut at 2026-02-01 (T0 + 31 days) and 2026-03-01 (+59).
        month = day.model_copy(
            update={"length": "month", "start": T0 + 14 * 86400, "end": T0 + 59 * 86400}
        )
        assert periods(month) == [
            (T0 + 14 * 86400, T0 + 31 * 86400),
            (T0 + 31 * 86400, T0 + 59 * 86400),
        ]

    def test_totals_per_period_and_deals_outside_are_history_only(self) -> None:
        deals = [
            deal(1, T0 - 500, IN, 10000, **BUY),  # before the period: opens, pays nothing
            deal(2, T0 + 100, OUT, 5000, "1.10100"),
            deal(3, T0 + 86400 + 100, OUT, 5000, "1.10100"),
        ]
        raw_period = {"from": T0, "to": T0 + 2 * 86400, "length": "day"}
        doc = document(deals, plan(version(per_lot("10"), start=T0 - 1000)), period=raw_period)
        result = preview(doc)
        # Each day: 10 x 0.5 = 5.
        assert [[(t.ib, t.amount, t.rows) for t in p.totals] for p in result.periods] == [
            [("L1", D("5.00"), 1)],
            [("L1", D("5.00"), 1)],
        ]

    def test_reassignment_moves_later_deals_only(self) -> None:
        moved = T0 + 500
        attribution = [
            {"login": 1001, "ib": "L1", "from": T0, "to": moved},
            {"login": 1001, "ib": "L2", "from": moved},
        ]
        deals = [
            deal(1, T0 + 100, IN, 10000, **BUY),
            deal(2, T0 + 400, OUT, 5000, "1.10100"),
            deal(3, T0 + 600, OUT, 5000, "1.10100"),
        ]
        doc = document(
            deals,
            plan(version(per_lot("4"))),
            plan(version(per_lot("10"))),
            attribution=attribution,
        )
        # Deal 2 under L1: L1 4 x 0.5 = 2, L2 (10 - 4) x 0.5 = 3. Deal 3, client now L2's own:
        # L2 10 x 0.5 = 5.
        assert amounts(rows(doc)) == [
            (2, "L1", D("2.00")),
            (2, "L2", D("3.00")),
            (3, "L2", D("5.00")),
        ]

    def test_unattributed_deals_are_listed(self) -> None:
        doc = document(one_lot_round_trip(), plan(version(per_lot("1"))), attribution=[])
        result = preview(doc)
        assert (result.rows, result.unattributed) == ((), (1, 2))


class TestDocumentChecks:
    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"ibs": {"L1": {"parent": "X", "plan": "p1"}}}, "parent X is not in ibs"),
            ({"ibs": {"L1": {"parent": "L1", "plan": "p1"}}}, "cycle"),
            ({"deals": [deal(1, T0, IN, 100), deal(1, T0, IN, 100)]}, "appears twice"),
            ({"deals": [deal(1, T0, 2, 100, VolumeClosed="100")]}, "0 < VolumeClosed < Volume"),
            ({"deals": [deal(1, T0, 7, 100)]}, "Entry 7"),
            ({"period": {"from": T0, "to": T0}}, "`to` must be after `from`"),
            ({"deals": [deal(1, T0, IN, 100, Symbol="GBPUSD")]}, "GBPUSD"),
        ],
    )
    def test_refused_with_the_reason(self, change: dict[str, Any], message: str) -> None:
        deals = change.pop("deals", [])
        with pytest.raises(ValidationError, match=message):
            document(deals, plan(version(per_lot("1"))), **change)

    def test_pool_shares_above_one_are_refused(self) -> None:
        pool = {"model": "pool", "shares": ["0.7", "0.4"]}
        with pytest.raises(ValidationError, match="more than 1"):
            document([], plan(version(per_lot("1"), tiers=pool)))

    def test_numbers_may_be_strings_or_json_numbers(self) -> None:
        as_numbers = deal(2, T0 + 900, OUT, 10000, Volume=10000, Price=D("1.101"), Deal=2)
        doc = document([as_numbers], plan(version(per_lot("10"))))
        assert isinstance(doc, PreviewInput)
        assert amounts(rows(doc)) == [(2, "L1", D("10.00"))]

    def test_state_records_are_not_trades(self) -> None:
        deals = [*one_lot_round_trip(), deal(3, T0 + 950, 255, 10000, "1.10100")]
        assert amounts(rows(document(deals, plan(version(per_lot("10")))))) == [
            (2, "L1", D("10.00"))
        ]

    def test_a_spread_rule_on_a_symbol_without_a_spread_is_refused(self) -> None:
        gold: dict[str, Any] = {"Symbol": "XAUUSD", "Price": "2000.00"}
        deals = [deal(1, T0 + 900, OUT, 10000, **gold)]
        doc = document(deals, plan(version({"basis": "spread_percent", "rate": "10"})))
        with pytest.raises(InvalidInput, match="XAUUSD: a spread rule needs spread_points"):
            rows(doc)
