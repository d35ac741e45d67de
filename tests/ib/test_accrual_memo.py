"""The accrual's shortcuts give what the plain calculation gives: a chain priced once per
(chain, versions, deal shape) and reused (`compute_ledger`) against `share` computed deal by
deal; deals added without per-deal validation (`with_plain_deals`) against the model's; and
the ledger lines' traces by reference (`trace_of`) against `Row.model_dump_json()`."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from activities.ib_accrual import DEAL_FIELDS, batch_rows, trace_of
from domain.ib.amounts import Own
from domain.ib.commissions import PreviewInput, _Calculation, compute_ledger
from domain.ib.document import PLAIN_DEAL_FIELDS, Deal, PlanVersion, PreviewDocument
from domain.ib.legs import trade_legs
from domain.ib.rows import RowValues
from tests.domain.ib.builders import T0, document, per_lot, plan, version
from tests.domain.ib.test_properties import plans, trade_deals


def _plain(doc: PreviewDocument) -> list[RowValues]:
    """The rows as the calculation made them before it reused anything: `share`, deal by
    deal, with a fresh calculation's pricer."""
    calc = _Calculation(doc)
    deals = sorted(doc.deals, key=lambda d: (d.time, d.ticket))
    legs = trade_legs(deals)
    first: dict[int, int] = {}
    for deal in deals:
        if deal.is_deposit:
            first.setdefault(deal.login, deal.ticket)
    found: list[RowValues] = []
    for deal in deals:
        if not doc.period.start <= deal.time < doc.period.end:
            continue
        price: Callable[[PlanVersion], Own]
        if deal.is_trade:
            price = partial(calc.pricer.trade, legs[deal.ticket])
        elif first.get(deal.login) == deal.ticket:
            price = partial(calc.pricer.first_deposit, deal)
        else:
            continue
        ib = calc.lookups.ib_of(deal.login, deal.time)
        if ib is not None:
            found += calc.share(deal, calc.lookups.chain(ib), price)
    return found


def _repeated(deals: list[dict[str, Any]], times: int) -> list[dict[str, Any]]:
    """The deals again `times` times, a day apart, each copy in positions of its own: the same
    shapes met again, which the calculation answers from what it remembered."""
    found = []
    for copy in range(times):
        for d in deals:
            found.append(
                d
                | {
                    "Deal": str(int(d["Deal"]) + 1000 * copy),
                    "Time": int(d["Time"]) + 86400 * copy,
                    "PositionID": str(int(d["PositionID"]) + 10 * copy),
                }
            )
    return found


@settings(max_examples=30, deadline=None)
@given(trade_deals(), plans(), st.integers(1, 3))
def test_chains_priced_once_give_the_rows_priced_deal_by_deal(
    deals: list[dict[str, Any]], chain: list[dict[str, Any]], times: int
) -> None:
    doc = document(_repeated(deals, times), *chain)
    rows, _ = compute_ledger(doc)
    assert [r.values() for r in rows] == _plain(doc)


def _tuples(doc: PreviewInput) -> list[tuple[Any, ...]]:
    return [
        (
            d.ticket,
            d.login,
            d.time,
            d.symbol,
            d.action,
            d.entry,
            d.volume,
            d.volume_closed,
            d.price,
            d.position_id,
            d.position_by_id,
            d.commission,
            d.profit,
        )
        for d in doc.deals
    ]


@settings(max_examples=25, deadline=None)
@given(trade_deals())
def test_plain_deals_are_the_models_deals(deals: list[dict[str, Any]]) -> None:
    doc = document(deals, plan(version(per_lot("1"))))
    empty = doc.model_copy(update={"deals": ()})
    made = empty.with_plain_deals(_tuples(doc))
    assert made is not None
    assert [d.model_dump() for d in made.deals] == [d.model_dump() for d in doc.deals]
    assert all(type(d) is Deal for d in made.deals)


def test_a_deal_the_model_would_refuse_is_left_to_the_model() -> None:
    doc = document([], plan(version(per_lot("1"))))
    good = (1, 1001, T0, "EURUSD", 1, 1, 100, 100, Decimal("1.1"), 7, 0, Decimal(0), Decimal(0))
    assert doc.with_plain_deals([good]) is not None
    refused = [
        (*good[:6], 0, *good[7:]),  # a trade without volume
        (*good[:5], 2, *good[6:]),  # INOUT without VolumeClosed < Volume
        (*good[:5], 7, *good[6:]),  # no such Entry
        (*good[:3], "GBPUSD", *good[4:]),  # a symbol not in the document
        (*good[:1], 2002, *good[2:]),  # a login without an account
        (*good[:8], Decimal("NaN"), *good[9:]),
        (*good[:2], "1767225600", *good[3:]),  # not yet of the model's types
    ]
    for values in refused:
        assert doc.with_plain_deals([values]) is None, values
    assert doc.with_plain_deals([good, good]) is None  # a ticket twice
    assert len(PLAIN_DEAL_FIELDS) == len(good)


@settings(max_examples=25, deadline=None)
@given(trade_deals(), plans(), st.integers(1, 2))
def test_ledger_lines_carry_the_whole_trace_by_reference(
    deals: list[dict[str, Any]], chain: list[dict[str, Any]], times: int
) -> None:
    doc = document(_repeated(deals, times), *chain)
    raw = json.loads(doc.model_dump_json(by_alias=True))
    head = {k: raw[k] for k in ("ibs", "plans", "attribution", "rates", "period")}
    accounts = {int(k): v for k, v in raw["accounts"].items()}
    terms = (Decimal(100000), 5)
    computed = batch_rows(
        "demo",
        head | {"accounts": accounts},
        [(*values, *terms) for values in _tuples(doc)],
        doc.period.start,
    )
    assert computed.error is None
    rows = [r.values().to_row() for r in compute_ledger(doc)[0]]
    assert len(computed.rows) == len(rows)
    assert len(DEAL_FIELDS) == len(PLAIN_DEAL_FIELDS) + len(terms)
    for (_, _, line), row in zip(computed.rows, rows, strict=True):
        expected = {"row": json.loads(row.model_dump_json()), "adjustment": None}
        assert json.loads(trace_of(line, computed.templates)) == expected
