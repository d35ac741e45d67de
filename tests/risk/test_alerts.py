"""The alert rules (domain/exposure/alerts.py): hysteresis by hand, each metric on a point
whose figures were computed by hand, and the series point of the docs' worked example."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.exposure.alerts import (
    Metric,
    Rule,
    Scope,
    Transition,
    account_utilisations,
    metric_value,
    summarise,
    transition,
)
from domain.exposure.compute import compute
from domain.exposure.document import ExposureDocument

D = Decimal
RULE = Rule(raise_above=D(100), clear_below=D(80))


class TestTransition:
    def test_a_series_raises_once_holds_in_the_band_and_clears_below(self) -> None:
        raised = False
        seen: list[Transition] = []
        for value in ["90", "100", "101", "95", "85", "80", "79.99", "90", "100.01"]:
            step = transition(RULE, D(value), raised)
            seen.append(step)
            if step is Transition.RAISE:
                raised = True
            elif step is Transition.CLEAR:
                raised = False
        assert seen == [
            Transition.QUIET,  # 90 <= 100
            Transition.QUIET,  # exactly at the line: not above
            Transition.RAISE,  # 101 > 100
            Transition.HOLD,  # 95: in the band, stays raised
            Transition.HOLD,
            Transition.HOLD,  # exactly 80: not below
            Transition.CLEAR,  # 79.99 < 80
            Transition.QUIET,  # 90: in the band, stays quiet (no flapping)
            Transition.RAISE,
        ]

    def test_no_value_changes_nothing(self) -> None:
        assert transition(RULE, None, raised=True) is Transition.HOLD
        assert transition(RULE, None, raised=False) is Transition.QUIET

    def test_clear_above_raise_is_refused(self) -> None:
        with pytest.raises(ValueError, match="hysteresis"):
            Rule(raise_above=D(1), clear_below=D(2))


def bucket(net: str, gross: str) -> dict[str, str]:
    return {"net_notional": net, "gross_notional": gross}


POINT: dict[str, Any] = {
    "total": bucket("-50.00", "450.00"),
    "by_symbol": {"EURUSD": bucket("150.00", "250.00"), "XAUUSD": bucket("-200.00", "200.00")},
    "by_group": {"real\\A": bucket("-50.00", "450.00")},
    "by_region": {"eu": bucket("-50.00", "450.00")},
    "by_book": {"A": bucket("30.00", "90.00"), "B": bucket("-80.00", "360.00")},
    "groups": {"real\\A": {"utilisation": "0.250000"}},
    "utilisation": "0.200000",
    "accounts": {"6100001": "0.310020", "6100002": None},
}


class TestMetricValue:
    @pytest.mark.parametrize(
        ("scope", "key", "metric", "expected"),
        [
            (Scope.SYMBOL, "XAUUSD", Metric.NET_NOTIONAL, D("200.00")),  # |-200|
            (Scope.TOTAL, "*", Metric.NET_NOTIONAL, D("50.00")),
            (Scope.SYMBOL, "EURUSD", Metric.GROSS_NOTIONAL, D("250.00")),
            (Scope.SYMBOL, "GBPUSD", Metric.NET_NOTIONAL, D(0)),  # nothing held
            # 200 / (150 + 200)
            (Scope.SYMBOL, "XAUUSD", Metric.CONCENTRATION, D(200) / D(350)),
            (Scope.BOOK, "B", Metric.CONCENTRATION, D(80) / D(110)),
            (Scope.TOTAL, "*", Metric.CONCENTRATION, None),
            (Scope.GROUP, "real\\A", Metric.MARGIN_UTILISATION, D("0.25")),
            (Scope.TOTAL, "*", Metric.MARGIN_UTILISATION, D("0.2")),
            (Scope.SYMBOL, "EURUSD", Metric.MARGIN_UTILISATION, None),
            (Scope.ACCOUNT, "6100001", Metric.MARGIN_UTILISATION, D("0.31002")),
            (Scope.ACCOUNT, "6100002", Metric.MARGIN_UTILISATION, None),  # equity <= 0
            (Scope.ACCOUNT, "6199999", Metric.MARGIN_UTILISATION, None),  # not computed
            (Scope.ACCOUNT, "6100001", Metric.NET_NOTIONAL, None),  # utilisation only
            (Scope.ACCOUNT, "6100001", Metric.CHANGE, None),
        ],
    )
    def test_by_hand(
        self, scope: Scope, key: str, metric: Metric, expected: Decimal | None
    ) -> None:
        assert metric_value(POINT, scope, key, metric) == expected

    def test_change_within_a_window(self) -> None:
        earlier = {**POINT, "by_symbol": {"EURUSD": bucket("-40.00", "40.00")}}
        # EURUSD went from -40 to +150: moved 190; XAUUSD from nothing to -200.
        assert metric_value(POINT, Scope.SYMBOL, "EURUSD", Metric.CHANGE, earlier) == D(190)
        assert metric_value(POINT, Scope.SYMBOL, "XAUUSD", Metric.CHANGE, earlier) == D(200)
        assert metric_value(POINT, Scope.SYMBOL, "EURUSD", Metric.CHANGE, None) is None


def test_the_worked_example_as_a_series_point() -> None:
    """The point keeps the figures the docs' hand-computed table gives."""
    root = Path(__file__).resolve().parents[2]
    document = json.loads(
        (root / "docs" / "examples" / "exposure.json").read_text(), parse_float=Decimal
    )
    doc = ExposureDocument.model_validate(document)
    exposure = compute(doc.market(), doc.account_terms(), doc.position_rows(), doc.order_rows())
    point = summarise(exposure)
    assert point["by_symbol"]["EURUSD"]["net_notional"] == "220020.00"
    assert point["by_symbol"]["USDJPY"]["net_notional"] == "-200000.00"
    assert point["total"]["net_notional"] == "130075.10"
    assert point["by_book"]["B"]["net_notional"] == "7521.10"
    assert point["house_net_notional"] == "102488.90"
    assert point["groups"]["real\\B"]["utilisation"] == "0.208487"
    assert "accounts" not in point  # only the accounts a threshold watches, added by the step
    assert account_utilisations(exposure, {"1001", "1003", "4242"}) == {
        "1001": "0.046543",  # 2327.15117 / 50000
        "1003": "0.300500",  # 3005.00 / 10000
    }
    # EURGBP buy limit 53129.25 + XAUUSD sell stop 39800.00
    assert point["total"]["pending_notional"] == "92929.25"
    json.dumps(point)  # stored as JSONB as it is
