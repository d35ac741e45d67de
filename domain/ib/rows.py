"""A commission row: one deal, one beneficiary, and the whole calculation behind its amount."""

from __future__ import annotations

from typing import Literal

from domain.ib.amounts import Dec, Part
from domain.ib.document import Frozen


class Conversion(Frozen):
    """earned (in `source`) x rate = amount before rounding (in `target`)."""

    source: str
    target: str
    rate: Dec


class Row(Frozen):
    """`own` is what the IB's plan prices the deal at (the pool, under the pool model);
    differential rows add `capped` (own after the levels above) and `below` (what the levels
    below took), pool rows their `share`. `earned` is exact, in the plan's currency; `amount`
    is `earned` converted and rounded half up to the payout currency's minor unit."""

    deal: int
    login: int
    time: int
    symbol: str
    ib: str
    level: int
    direct_ib: str
    model: Literal["differential", "pool"]
    plan: str
    version: int
    volume: Dec
    volume_why: str
    parts: tuple[Part, ...]
    own: Dec
    capped: Dec | None = None
    below: Dec | None = None
    share: Dec | None = None
    earned: Dec
    earned_currency: str
    conversion: Conversion | None
    amount: Dec
    currency: str
