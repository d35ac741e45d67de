"""Adjustments: a paid period's rows against the same deals recomputed after a correction.

Rows are matched on (deal, IB, currency). Each difference becomes an adjustment of
recomputed minus paid: negative (a clawback) when a corrected deal now pays less or nothing,
positive when it pays more. Paid rows are never rewritten; only deals that were paid are
compared, so new deals stay ordinary rows of their own period.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from domain.ib.amounts import Dec
from domain.ib.document import Frozen
from domain.ib.rows import Row


class Adjustment(Frozen):
    deal: int
    ib: str
    level: int
    paid: Dec
    recomputed: Dec
    amount: Dec
    currency: str
    why: str


def adjustments(paid: Sequence[Row], recomputed: Sequence[Row]) -> list[Adjustment]:
    paid_deals = {row.deal for row in paid}
    before = {(r.deal, r.ib, r.currency): r for r in paid}
    after = {(r.deal, r.ib, r.currency): r for r in recomputed if r.deal in paid_deals}
    found = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        was = old.amount if old else Decimal(0)
        now = new.amount if new else Decimal(0)
        if was == now:
            continue
        deal, ib, currency = key
        found.append(
            Adjustment(
                deal=deal,
                ib=ib,
                level=(new or before[key]).level,
                paid=was,
                recomputed=now,
                amount=now - was,
                currency=currency,
                why=f"paid on: {old.volume_why if old else 'no row'};"
                f" recomputed on: {new.volume_why if new else 'no row'}",
            )
        )
    return found
