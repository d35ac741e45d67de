"""The accrual's fast path writes what the models would: `RowJson` is `Row.model_dump_json()`,
`compute_values` is `compute`, and the COPY lines `activities.ib_accrual` makes carry the row's
trace and columns exactly (checked on the docs' example and on random documents)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings

from activities.ib_accrual import (
    ACCRUAL_FIELDS,
    DEAL_FIELDS,
    LEDGER_COLUMNS,
    batch_rows,
    copy_escape,
    copy_unescape,
    trace_of,
)
from db.queries.ib import ACCRUAL_DEAL_FIELDS
from domain.ib.commissions import PreviewInput, compute, compute_values
from domain.ib.rows import RowJson
from tests.domain.ib.builders import document
from tests.domain.ib.test_properties import plans, trade_deals

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "ib-preview.json"


def _example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(), parse_float=Decimal)  # type: ignore[no-any-return]


def _as_accrued(raw: dict[str, Any]) -> dict[str, Any]:
    """The example as the accrual knows it: symbols from the deals (no paths, see
    docs/ib-payouts.md), so its rules name the symbol instead of its path."""
    for plan in raw["plans"].values():
        for version in plan["versions"]:
            for rule in version["rules"]:
                if rule.pop("paths", None):
                    rule["symbols"] = ["EURUSD"]
    raw["symbols"] = {"EURUSD": {"contract_size": Decimal(100000), "digits": 5}}
    return raw


def _same_rows(doc: PreviewInput) -> None:
    values, unattributed = compute_values(doc)
    rows, again = compute(doc)
    assert (rows, again) == ([v.to_row() for v in values], unattributed)
    write = RowJson()
    assert [write(v) for v in values] == [r.model_dump_json() for r in rows]


def test_the_example_rows_are_written_as_the_model_writes_them() -> None:
    _same_rows(PreviewInput.model_validate(_example()))


@settings(max_examples=60, deadline=None)
@given(trade_deals(), plans())
def test_random_rows_are_written_as_the_model_writes_them(
    deals: list[dict[str, Any]], chain: list[dict[str, Any]]
) -> None:
    _same_rows(document(deals, *chain))


def test_the_query_answers_the_fields_the_workers_read() -> None:
    assert tuple(ACCRUAL_DEAL_FIELDS) == ACCRUAL_FIELDS == (*DEAL_FIELDS, "MarketBid", "MarketAsk")


def test_copy_text_round_trips() -> None:
    text = 'a\\b\tc\nd\re "q" \\t'
    assert "\t" not in copy_escape(text) and "\n" not in copy_escape(text)
    assert copy_unescape(copy_escape(text)) == text


def test_a_batch_is_the_ledger_lines_of_its_rows() -> None:
    raw = _as_accrued(_example())
    deals = [tuple(d.get(f, _default(f)) for f in DEAL_FIELDS) for d in _deal_fields(raw["deals"])]
    accounts = {int(k): v for k, v in raw["accounts"].items()}
    head = {k: raw[k] for k in ("ibs", "plans", "attribution", "rates", "period")}
    doc = PreviewInput.model_validate(raw)
    computed = batch_rows("demo", head | {"accounts": accounts}, deals, doc.period.start)
    rows, _ = compute(doc)
    assert computed.error is None and computed.unattributed == 0 and len(rows) == 15
    assert [(deal, ib) for deal, ib, _ in computed.rows] == [(r.deal, r.ib) for r in rows]
    for (_, _, line), row in zip(computed.rows, rows, strict=True):
        trace = json.loads(trace_of(line))
        assert trace == {"row": json.loads(row.model_dump_json()), "adjustment": None}
        columns = dict(zip(LEDGER_COLUMNS, line[:-1].split("\t"), strict=True))
        assert columns | {"trace": ""} == {
            "server": "demo",
            "deal": str(row.deal),
            "ib_id": row.ib,
            "plan_id": row.plan,
            "version": str(row.version),
            "revision": "0",
            "level": str(row.level),
            "login": str(row.login),
            "symbol": row.symbol,
            "deal_time": str(row.time),
            "amount": str(row.amount),
            "currency": row.currency,
            "trace": "",
        }


def test_an_invalid_batch_answers_why() -> None:
    raw = _example()
    raw["rates"] = []  # M is paid in EUR from USD plans: the rate is missing
    deals = [tuple(d.get(f, _default(f)) for f in DEAL_FIELDS) for d in _deal_fields(raw["deals"])]
    head = {k: raw[k] for k in ("ibs", "plans", "attribution", "rates", "period")}
    accounts = {int(k): v for k, v in raw["accounts"].items()}
    computed = batch_rows("demo", head | {"accounts": accounts}, deals, raw["period"]["from"])
    assert computed.error == "rates: no rate from USD to EUR"


def _deal_fields(deals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The example's deals as the database answers them: numbers, and the symbol's terms."""
    numbers = {"Price", "Commission", "Profit"}
    return [
        {
            k: (Decimal(str(v)) if k in numbers else int(v) if k != "Symbol" else v)
            for k, v in d.items()
        }
        | {"ContractSize": Decimal(100000), "Digits": 5}
        for d in deals
    ]


def _default(field: str) -> Any:
    return (
        "" if field == "Symbol" else Decimal(0) if field in {"Price", "Commission", "Profit"} else 0
    )
