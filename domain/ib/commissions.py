"""Commission rows: each deal of the period priced by the plans of its client's IB chain, shared
across the levels, converted to each beneficiary's payout currency and rounded once per row.

Differential: every level prices the deal with its own plan; a level's amount is capped by every
level above it, and it earns its capped amount minus the capped amount of the level below. So no
level earns less than nothing and the levels together earn exactly the top level's amount.
Pool: the client's own IB's plan prices the pool and level k earns shares[k-1] of it; levels
beyond the shares earn nothing and unused shares stay with the broker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from typing import Literal

from domain.errors import InvalidInput
from domain.ib.amounts import Dec, Own, price_first_deposit, price_trade
from domain.ib.clawback import Adjustment, adjustments
from domain.ib.document import Deal, Frozen, Period, PlanVersion, Pool, PreviewDocument
from domain.ib.legs import trade_legs
from domain.ib.rows import Conversion, Row
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


def _round(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-MINOR_UNITS[currency]), ROUND_HALF_UP)


def _row(
    doc: PreviewDocument,
    deal: Deal,
    chain: tuple[str, ...],
    level: int,
    priced: tuple[str, PlanVersion],
    own: Own,
    earned: Decimal,
    model: Literal["differential", "pool"],
    **trace: Decimal | None,
) -> Row:
    ib = chain[level - 1]
    plan, version = priced
    payout = doc.version_of(ib, deal.time, deal.ticket)[1].payout
    rate = doc.rate(version.currency, payout)
    conversion = (
        None
        if payout == version.currency
        else Conversion(source=version.currency, target=payout, rate=rate)
    )
    return Row(
        deal=deal.ticket,
        login=deal.login,
        time=deal.time,
        symbol=deal.symbol,
        ib=ib,
        level=level,
        direct_ib=chain[0],
        model=model,
        plan=plan,
        version=version.version,
        volume=own.volume,
        volume_why=own.why,
        parts=own.parts,
        own=own.amount,
        earned=earned,
        earned_currency=version.currency,
        conversion=conversion,
        amount=_round(earned * rate, payout),
        currency=payout,
        **trace,
    )


def _share(
    doc: PreviewDocument, deal: Deal, chain: tuple[str, ...], price: Callable[[PlanVersion], Own]
) -> list[Row]:
    first = doc.version_of(chain[0], deal.time, deal.ticket)
    governing = first[1]
    if isinstance(governing.tiers, Pool):
        pool = price(governing)
        if not pool.parts:
            return []
        return [
            _row(doc, deal, chain, level, first, pool, pool.amount * share, "pool", share=share)
            for level, share in enumerate(governing.tiers.shares[: len(chain)], start=1)
        ]
    versions = [doc.version_of(ib, deal.time, deal.ticket) for ib in chain]
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
            _row(
                doc,
                deal,
                chain,
                k + 1,
                versions[k],
                own,
                capped[k] - below,
                "differential",
                capped=capped[k],
                below=below,
            )
        )
        below = capped[k]
    return rows


def compute(doc: PreviewDocument) -> tuple[list[Row], list[int]]:
    """The rows of every deal in the period, and the deals no IB had at their time."""
    deals = sorted(doc.deals, key=lambda d: (d.time, d.ticket))
    legs = trade_legs(deals)
    first_deposits: dict[int, int] = {}
    for deal in deals:
        if deal.is_deposit:
            first_deposits.setdefault(deal.login, deal.ticket)
    rows: list[Row] = []
    unattributed: list[int] = []
    for deal in deals:
        if not doc.period.start <= deal.time < doc.period.end:
            continue
        price: Callable[[PlanVersion], Own]
        if deal.is_trade:
            price = partial(price_trade, doc, legs[deal.ticket])
        elif first_deposits.get(deal.login) == deal.ticket:
            price = partial(price_first_deposit, doc, deal)
        else:
            continue
        ib = doc.ib_of(deal.login, deal.time)
        if ib is None:
            unattributed.append(deal.ticket)
            continue
        rows += _share(doc, deal, doc.chain(ib), price)
    return rows, unattributed


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
