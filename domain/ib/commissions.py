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
from domain.ib.legs import DealLegs, trade_legs
from domain.ib.rows import LedgerRow, Row, RowTail, RowValues
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
        # A chain's tails by what they are computed from (`shared`).
        self._tails: dict[tuple[object, ...], tuple[RowTail, ...]] = {}
        self._kept: list[object] = []
        self._same: set[tuple[int, ...]] = set()  # versions whose currencies were checked
        self._memoised = True

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
        self._same_currency(deal, chain, versions, governing)
        owns = [price(version) for _, version in versions]
        if not any(own.parts for own in owns):
            return []
        return self._differential(deal, chain, versions, owns)

    def _same_currency(
        self,
        deal: Deal,
        chain: tuple[str, ...],
        versions: list[tuple[str, PlanVersion]],
        governing: PlanVersion,
    ) -> None:
        for ib, (plan, version) in zip(chain, versions, strict=True):
            if version.currency != governing.currency:
                raise InvalidInput(
                    f"deal {deal.ticket}: IB {ib} is paid differentially under plan {plan} in"
                    f" {version.currency}, its chain's first plan is in {governing.currency}"
                )

    def _differential(
        self,
        deal: Deal,
        chain: tuple[str, ...],
        versions: list[tuple[str, PlanVersion]],
        owns: list[Own],
    ) -> list[RowValues]:
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

    def shared(
        self,
        deal: Deal,
        chain: tuple[str, ...],
        price: Callable[[PlanVersion], Own],
        legs: DealLegs | None = None,
    ) -> list[tuple[str, RowTail]]:
        """`share`'s rows as (volume_why, tail), level after level. A trade's chain priced like
        an earlier deal's (the same chain, versions, and each level's parts and counted volume)
        gets the earlier deal's tails: what `share` would compute again from the same values.
        Errors are `share`'s (a first meeting computes through it). `legs`: the trade's, when
        `price` prices them (`Pricer.trade`)."""
        version_of = self.lookups.version_of
        first = version_of(chain[0], deal.time, deal.ticket)
        governing = first[1]
        if isinstance(governing.tiers, Pool):
            pool = price(governing)
            if not pool.parts:
                return []
            levels = governing.tiers.shares[: len(chain)]
            try:
                versions = [version_of(ib, deal.time, deal.ticket) for ib in chain[: len(levels)]]
            except InvalidInput:
                versions = None  # `share` raises what it meets first
            if versions is None:
                return [(r.volume_why, RowTail.of(r)) for r in self.share(deal, chain, price)]
            key: tuple[object, ...] = (
                chain,
                tuple(id(v) for _, v in versions),
                id(pool.parts),
                pool.volume,
            )
            found = self._tails.get(key)
            if found is None:
                rows = self.share(deal, chain, price)
                found = self._remember(key, pool.parts, rows)
            return [(pool.why, tail) for tail in found]
        versions_ = self.lookups.chain_versions(chain, deal.time, deal.ticket)
        version_ids = tuple(id(v) for _, v in versions_)
        if version_ids not in self._same:
            self._same_currency(deal, chain, versions_, governing)
            self._same.add(version_ids)
        if legs is not None and self._memoised:
            # A trade: its tails are known from the versions, the deal's subject and each
            # level's counted shape (what each level's parts and counted volume come from),
            # without pricing each level again.
            counted = self.pricer.counted(legs, [v for _, v in versions_])
            fast = (
                chain,
                version_ids,
                id(self.pricer.subject(deal)),
                tuple(id(c.shape) for c in counted),
            )
            tails = self._tails.get(fast)
            if tails is not None:
                if not tails:
                    return []  # no level prices anything on it
                return [(c.why, tail) for c, tail in zip(counted, tails, strict=True)]
        else:
            fast = None
        owns = [price(version) for _, version in versions_]
        if not any(own.parts for own in owns):
            if fast is not None:
                self._tails[fast] = ()
            return []
        key = (
            chain,
            version_ids,
            tuple(id(own.parts) for own in owns),
            tuple(own.volume for own in owns),
        )
        found = self._tails.get(key)
        if found is None:
            rows = self._differential(deal, chain, versions_, owns)
            found = self._remember(key, [own.parts for own in owns], rows)
        if fast is not None and self._memoised:
            self._tails[fast] = found
        return [(own.why, tail) for own, tail in zip(owns, found, strict=True)]

    def _remember(
        self, key: tuple[object, ...], keep: object, rows: list[RowValues]
    ) -> tuple[RowTail, ...]:
        tails = tuple(RowTail.of(r) for r in rows)
        if self._memoised:
            # `keep` holds the parts whose ids are in the key, so no other tuple gets their id.
            self._tails[key] = tails
            self._kept.append(keep)
        return tails

    def ledger(self) -> tuple[list[LedgerRow], list[int]]:
        """The rows of the period's deals (`LedgerRow`, tails shared) and the deals no IB had
        at their time."""
        doc = self.lookups.doc
        deals = sorted(doc.deals, key=lambda d: (d.time, d.ticket))
        legs = trade_legs(deals)
        first_deposits: dict[int, int] = {}
        for deal in deals:
            if deal.is_deposit:
                first_deposits.setdefault(deal.login, deal.ticket)
        rows: list[LedgerRow] = []
        unattributed: list[int] = []
        start, end = doc.period.start, doc.period.end
        pricer = self.pricer
        for deal in deals:
            if not start <= deal.time < end:
                continue
            price: Callable[[PlanVersion], Own]
            dl = None
            if deal.is_trade:
                dl = legs[deal.ticket]
                price = partial(pricer.trade, dl)
                self._memoised = True  # a trade's parts are the pricer's own, kept by it
            elif first_deposits.get(deal.login) == deal.ticket:
                price = partial(pricer.first_deposit, deal)
                self._memoised = False  # a deposit's parts are made anew: not memoised
            else:
                continue
            ib = self.lookups.ib_of(deal.login, deal.time)
            if ib is None:
                unattributed.append(deal.ticket)
                continue
            chain = self.lookups.chain(ib)
            head, direct = (deal.ticket, deal.login, deal.time, deal.symbol), chain[0]
            rows += [
                LedgerRow(*head, chain[level], level + 1, direct, why, tail)
                for level, (why, tail) in enumerate(self.shared(deal, chain, price, dl))
            ]
        return rows, unattributed


def compute_ledger(doc: PreviewDocument) -> tuple[list[LedgerRow], list[int]]:
    """`compute_values`'s rows as the ledger stores them: `LedgerRow`s whose tails are shared
    by the rows priced alike (one object each)."""
    return _Calculation(doc).ledger()


def compute_values(doc: PreviewDocument) -> tuple[list[RowValues], list[int]]:
    """The rows of every deal in the period, and the deals no IB had at their time."""
    rows, unattributed = compute_ledger(doc)
    return [r.values() for r in rows], unattributed


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
