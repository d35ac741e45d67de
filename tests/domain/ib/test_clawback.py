"""Clawback: a deal corrected after its period was paid is recomputed, and the difference is an
adjustment row; the paid rows themselves are never rewritten."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

from domain.ib.clawback import adjustments
from domain.ib.commissions import preview
from domain.ib.rows import Row
from tests.domain.ib.builders import T0, deal, document, per_lot, plan, rows, version

BUY: dict[str, Any] = {"Action": 0}
TREE = (plan(version(per_lot("4"))), plan(version(per_lot("7"))), plan(version(per_lot("10"))))


def paid_rows() -> list[Row]:
    """1 lot opened and closed under the 4 / 7 / 10 differential: L1 4, L2 3, L3 3 paid."""
    deals = [deal(1, T0 + 100, 0, 10000, **BUY), deal(2, T0 + 900, 1, 10000, "1.10100")]
    found = rows(document(deals, *TREE))
    assert [r.amount for r in found] == [D("4.00"), D("3.00"), D("3.00")]
    return found


def corrected(**fields: object) -> list[dict[str, object]]:
    return [
        deal(1, T0 + 100, 0, 10000, **BUY),
        deal(2, T0 + 900, 1, 10000, "1.10100") | fields,
    ]


def test_a_corrected_volume_is_clawed_back_level_by_level() -> None:
    paid = paid_rows()
    # The dealer corrects deal 2 to 0.40 lot (Profit with it): L1 4 x 0.4 = 1.6, L2 (7 - 4) x
    # 0.4 = 1.2, L3 (10 - 7) x 0.4 = 1.2; adjustments 1.6 - 4 = -2.4, 1.2 - 3 = -1.8 twice.
    again = rows(document(corrected(Volume="4000", VolumeClosed="4000", Profit="40"), *TREE))
    found = adjustments(paid, again)
    assert [(a.deal, a.ib, a.paid, a.recomputed, a.amount) for a in found] == [
        (2, "L1", D("4.00"), D("1.60"), D("-2.40")),
        (2, "L2", D("3.00"), D("1.20"), D("-1.80")),
        (2, "L3", D("3.00"), D("1.20"), D("-1.80")),
    ]
    assert found[0].why == (
        "paid on: OUT: 1.00 closed; round turn counts closes: 1.00;"
        " recomputed on: OUT: 0.40 closed; round turn counts closes: 0.40"
    )


def test_a_cancelled_deal_is_clawed_back_whole() -> None:
    # Action 14 (DEAL_SELL_CANCELED) is not a trade: no rows, so -4, -3, -3.
    again = rows(document(corrected(Action=14), *TREE))
    assert [a.amount for a in adjustments(paid_rows(), again)] == [
        D("-4.00"),
        D("-3.00"),
        D("-3.00"),
    ]


def test_paid_rows_come_back_through_the_document_as_json() -> None:
    paid = [json.loads(r.model_dump_json()) for r in paid_rows()]
    doc = document(corrected(Volume="4000", VolumeClosed="4000"), *TREE, paid=paid)
    assert [a.amount for a in preview(doc).adjustments] == [D("-2.40"), D("-1.80"), D("-1.80")]


def test_recomputing_an_unchanged_period_adjusts_nothing() -> None:
    assert adjustments(paid_rows(), paid_rows()) == []


def test_new_deals_are_not_adjustments() -> None:
    extra = [deal(3, T0 + 950, 0, 10000, position=8, **BUY)]
    extra.append(deal(4, T0 + 1950, 1, 10000, "1.10100", position=8))
    again = rows(document(corrected() + extra, *TREE))
    assert adjustments(paid_rows(), again) == []
