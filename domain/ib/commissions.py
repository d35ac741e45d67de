"""Commission rows: each deal of the period priced by the plans of its client's IB chain, shared
across the levels, converted to each beneficiary's payout currency and rounded once per row.

Differential: every level prices the deal with its own plan; a level's amount is capped by every
level above it, and it earns its capped amount minus the capped amount of the level below. So no
level earns less than nothing and the levels together earn exactly the top level's amount.
Pool: the client's own IB's plan prices the pool and level k earns shares[k-1] of it; levels
beyond the shares earn nothing and unused shares stay with the broker.

`compute_values` is the calculation (rows as `RowValues`, what the commission ledger stores);
`compute` is the same rows as `Row` models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from typing import Literal

from domain.errors import InvalidInput
from domain.ib.amounts import Dec, Own, Pricer
from domain.ib.clawback import Adjustment, adjustments
from domain.ib.document import Deal, Frozen, Lookups, Period, PlanVersion, Pool, PreviewDocument
from domain.ib.legs import trade_legs
from domain.ib.rows import Row, RowValues
from domain.money import MINOR_UNITS

DAY = 86400


class Total(Frozen):
    ib: str
    amount: Dec
    currency: str
    rows: int


class PeriodTotals(Frozen):
    start: int
    end: int
    totals: tuple[Total, ...]


class Result(Frozen):
    periods: tuple[PeriodTotals, ...]
    rows: tuple[Row, ...]
    unattributed: tuple[int, ...]
    adjustments: tuple[Adjustment, ...] = ()


class PreviewInput(PreviewDocument):
    """The document, plus the rows already paid for its deals when a correction is checked."""

    paid: tuple[Row, ...] = ()


def periods(period: Period) -> list[tuple[int, int]]:
    """[start, end) pieces: days and weeks counted from `from`, months cut at the calendar's
    month starts (on the server's clock, which the Unix seconds already are)."""
    cuts: list[tuple[int, int]] = []
    start = period.start
    while start < period.end:
        if period.length is None:
            end = period.end
        elif period.length == "month":
            day = datetime.fromtimestamp(start, UTC)
            first = datetime(day.year, day.month, 1, tzinfo=UTC) + timedelta(days=32)
            end = int(first.replace(day=1).timestamp())
        elif isinstance(period.length, int):
            end = start + period.length
        else:
            end = start + (DAY if period.length == "day" else 7 * DAY)
        cuts.append((start, min(end, period.end)))
        start = end
    return cuts


_QUANTA = {currency: Decimal(1).scaleb(-units) for currency, units in MINOR_UNITS.items()}


def _round(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(_QUANTA[currency], ROUND_HALF_UP)


class _Calculation:
    """One document's rows; look-ups and pricing shared by all its deals."""

    def __init__(self, doc: PreviewDocument) -> None:
        self.lookups = Lookups(doc)
        self.pricer = Pricer(self.lookups)

    def row(
        self,
        deal: Deal,
        chain: tuple[str, ...],
        level: int,
        priced: tuple[str, PlanVersion],
        own: Own,
        earned: Decimal,
        model: Literal["differential", "pool"],
        capped: Decimal | None = None,
        below: Decimal | None = None,
        share: Decimal | None = None,
        own_version: PlanVersion | None = None,
    ) -> RowValues:
        """`own_version`: the beneficiary's version in force, when the caller has it."""
        ib = chain[level - 1]
        plan, version = priced
        if own_version is None:
            own_version = self.lookups.version_of(ib, deal.time, deal.ticket)[1]
        payout = own_version.payout
        source = version.currency
        rate = self.lookups.rate(source, payout)
        return RowValues(
            deal.ticket,
            deal.login,
            deal.time,
            deal.symbol,
            ib,
            level,
            chain[0],
            model,
            plan,
            version.version,
            own.volume,
            own.why,
            own.parts,
            own.amount,
            capped,
            below,
            share,
            earned,
            source,
            None if payout == source else (source, payout, rate),
            _round(earned * rate, payout),
            payout,
        )

    def share(
        self, deal: Deal, chain: tuple[str, ...], price: Callable[[PlanVersion], Own]
    ) -> list[RowValues]:
        version_of = self.lookups.version_of
        first = version_of(chain[0], deal.time, deal.ticket)
        governing = first[1]
        if isinstance(governing.tiers, Pool):
            pool = price(governing)
            if not pool.parts:
                return []
            return [
                self.row(deal, chain, level, first, pool, pool.amount * share, "pool", share=share)
                for level, share in enumerate(governing.tiers.shares[: len(chain)], start=1)
            ]
        versions = [version_of(ib, deal.time, deal.ticket) for ib in chain]
        for ib, (plan, version) in zip(chain, versions, strict=True):
            if version.currency != governing.currency:
                raise InvalidInput(
                    f"deal {deal.ticket}: IB {ib} is paid differentially under plan {plan} in"
                    f" {version.currency}, its chain's first plan is in {governing.currency}"
                )
        owns = [price(version) for _, version in versions]
        if not any(own.parts for own in owns):
            return []
        capped = [own.amount for own in owns]
        for k in range(len(capped) - 2, -1, -1):
            capped[k] = min(capped[k], capped[k + 1])
        rows, below = [], Decimal(0)
        for k, own in enumerate(owns):
            rows.append(
                self.row(
                    deal,
                    chain,
                    k + 1,
                    versions[k],
                    own,
                    capped[k] - below,
                    "differential",
                    capped=capped[k],
                    below=below,
                    own_version=versions[k][1],
                )
            )
            below = capped[k]
        return rows

    def compute(self) -> tuple[list[RowValues], list[int]]:
        doc = self.lookups.doc
        deals = sorted(doc.deals, key=lambda d: (d.time, d.ticket))
        legs = trade_legs(deals)
        first_deposits: dict[int, int] = {}
        for deal in deals:
            if deal.is_deposit:
                first_deposits.setdefault(deal.login, deal.ticket)
        rows: list[RowValues] = []
        unattributed: list[int] = []
        start, end = doc.period.start, doc.period.end
        pricer = self.pricer
        for deal in deals:
            if not start <= deal.time < end:
                continue
            price: Callable[[PlanVersion], Own]
            if deal.is_trade:
                price = partial(pricer.trade, legs[deal.ticket])
            elif first_deposits.get(deal.login) == deal.ticket:
                price = partial(pricer.first_deposit, deal)
            else:
                continue
            ib = self.lookups.ib_of(deal.login, deal.time)
            if ib is None:
                unattributed.append(deal.ticket)
                continue
            rows += self.share(deal, self.lookups.chain(ib), price)
        return rows, unattributed


def compute_values(doc: PreviewDocument) -> tuple[list[RowValues], list[int]]:
    """The rows of every deal in the period, and the deals no IB had at their time."""
    return _Calculation(doc).compute()


def compute(doc: PreviewDocument) -> tuple[list[Row], list[int]]:
    """The rows of every deal in the period, and the deals no IB had at their time."""
    values, unattributed = compute_values(doc)
    return [v.to_row() for v in values], unattributed


def _totals(rows: Sequence[Row], start: int, end: int) -> PeriodTotals:
    sums: dict[tuple[str, str], tuple[Decimal, int]] = {}
    for row in rows:
        if start <= row.time < end:
            amount, count = sums.get((row.ib, row.currency), (Decimal(0), 0))
            sums[(row.ib, row.currency)] = (amount + row.amount, count + 1)
    return PeriodTotals(
        start=start,
        end=end,
        totals=tuple(
            Total(ib=ib, amount=amount, currency=currency, rows=count)
            for (ib, currency), (amount, count) in sorted(sums.items())
        ),
    )


def preview(request: PreviewInput) -> Result:
    rows, unattributed = compute(request)
    return Result(
        periods=tuple(_totals(rows, start, end) for start, end in periods(request.period)),
        rows=tuple(rows),
        unattributed=tuple(unattributed),
        adjustments=tuple(adjustments(request.paid, rows)),
    )
