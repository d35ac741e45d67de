"""The accrual's workers read each deal's raw quote (`ACCRUAL_FIELDS`, as the deals query answers
them): a spread rule is paid on the spread the deal captured, the same rows as the model's
document with MarketBid/MarketAsk (tests/domain/ib/test_captured_spread.py has the amounts)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from activities.ib_accrual import ACCRUAL_FIELDS, DEAL_FIELDS, batch_rows, trace_of
from domain.ib.commissions import compute_ledger
from tests.domain.ib.builders import T0, deal, document, plan, version

BUY: dict[str, Any] = {"Action": 0}
QUOTES: tuple[dict[str, Any], ...] = (
    {"MarketBid": "1.09995", "MarketAsk": "1.10005"},
    {},
)  # the second deal has none


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    numbers = {"Price", "Commission", "Profit", "MarketBid", "MarketAsk"}
    return {k: Decimal(v) if k in numbers else v if k == "Symbol" else int(v) for k, v in d.items()}


def test_a_batch_prices_the_spread_each_deal_captured() -> None:
    deals = [
        deal(1, T0 + 100, 0, 10000, "1.10010", **BUY, **QUOTES[0]),
        deal(2, T0 + 900, 1, 10000, "1.10085", **QUOTES[1]),
    ]
    rule = {"basis": "spread_percent", "rate": "50"}
    doc = document(deals, plan(version(rule, counting="per_side")))
    raw = json.loads(doc.model_dump_json(by_alias=True))
    head = {k: raw[k] for k in ("ibs", "plans", "attribution", "rates", "period")}
    accounts = {int(k): v for k, v in raw["accounts"].items()}
    terms = {"ContractSize": Decimal(100000), "Digits": 5}
    tuples = [
        tuple(
            (_plain(d) | terms).get(f, Decimal(0) if f.startswith("Market") else 0)
            for f in ACCRUAL_FIELDS
        )
        for d in deals
    ]
    symbol_terms = {"EURUSD": {"spread_points": "12", "profit_currency": "USD"}}
    computed = batch_rows(
        "demo", head | {"accounts": accounts, "symbol_terms": symbol_terms}, tuples, T0
    )
    assert computed.error is None
    expected = [r.values().to_row() for r in compute_ledger(doc)[0]]
    got = [json.loads(trace_of(line, computed.templates))["row"] for _, _, line in computed.rows]
    assert [r["amount"] for r in got] == ["5.00", "3.00"] == [str(r.amount) for r in expected]
    assert "captured" in got[0]["parts"][0]["note"]
    # The same deals without their quotes (`DEAL_FIELDS` only) pay the fixed 12 points on both.
    fixed = batch_rows(
        "demo",
        head | {"accounts": accounts, "symbol_terms": symbol_terms},
        [t[: len(DEAL_FIELDS)] for t in tuples],
        T0,
    )
    amounts = [
        json.loads(trace_of(line, fixed.templates))["row"]["amount"] for *_, line in fixed.rows
    ]
    assert amounts == ["3.00", "3.00"]
