"""A commission row: one deal, one beneficiary, and the whole calculation behind its amount.

The calculation makes rows as `RowValues` (plain values in `Row`'s field order, cheap to make by
the million); `Row` is the model callers read, and `row_json` writes the same JSON as
`Row.model_dump_json()` straight from the values, for the commission ledger's traces.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Literal, NamedTuple

from domain.ib.amounts import Dec, Part, PartValues, plain
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


class RowValues(NamedTuple):
    """A `Row`'s fields, in its order; `conversion` as (source, target, rate)."""

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
    volume: Decimal
    volume_why: str
    parts: tuple[PartValues, ...]
    own: Decimal
    capped: Decimal | None
    below: Decimal | None
    share: Decimal | None
    earned: Decimal
    earned_currency: str
    conversion: tuple[str, str, Decimal] | None
    amount: Decimal
    currency: str

    def to_row(self) -> Row:
        """The model, with the values as they are (they were made by the calculation, which
        is what validation would check)."""
        conversion = self.conversion
        return Row.model_construct(
            **self._asdict()
            | {
                "parts": tuple(Part.from_values(p) for p in self.parts),
                "conversion": None
                if conversion is None
                else Conversion.model_construct(
                    source=conversion[0], target=conversion[1], rate=conversion[2]
                ),
            }
        )


class RowTail(NamedTuple):
    """What a row holds beyond its deal, its beneficiary and `volume_why`: the same for every
    deal whose chain is priced alike (the chain, its versions, the parts and counted volume of
    each level), so the calculation makes it once and shares it (`LedgerRow`)."""

    model: Literal["differential", "pool"]
    plan: str
    version: int
    volume: Decimal
    parts: tuple[PartValues, ...]
    own: Decimal
    capped: Decimal | None
    below: Decimal | None
    share: Decimal | None
    earned: Decimal
    earned_currency: str
    conversion: tuple[str, str, Decimal] | None
    amount: Decimal
    currency: str

    def values(
        self,
        deal: int,
        login: int,
        time: int,
        symbol: str,
        ib: str,
        level: int,
        direct_ib: str,
        volume_why: str,
    ) -> RowValues:
        return RowValues(
            deal,
            login,
            time,
            symbol,
            ib,
            level,
            direct_ib,
            self.model,
            self.plan,
            self.version,
            self.volume,
            volume_why,
            self.parts,
            self.own,
            self.capped,
            self.below,
            self.share,
            self.earned,
            self.earned_currency,
            self.conversion,
            self.amount,
            self.currency,
        )

    @classmethod
    def of(cls, r: RowValues) -> RowTail:
        return cls(
            r.model,
            r.plan,
            r.version,
            r.volume,
            r.parts,
            r.own,
            r.capped,
            r.below,
            r.share,
            r.earned,
            r.earned_currency,
            r.conversion,
            r.amount,
            r.currency,
        )


class LedgerRow(NamedTuple):
    """A row as the ledger stores it: the deal, the beneficiary, `volume_why`, and its shared
    `tail` (one object for every row priced alike)."""

    deal: int
    login: int
    time: int
    symbol: str
    ib: str
    level: int
    direct_ib: str
    volume_why: str
    tail: RowTail

    def values(self) -> RowValues:
        return self.tail.values(
            self.deal,
            self.login,
            self.time,
            self.symbol,
            self.ib,
            self.level,
            self.direct_ib,
            self.volume_why,
        )


# The keys of a row's JSON a `RowTail` holds, in `Row`'s order (`RowJson.tail`).
TAIL_KEYS = (
    "model plan version volume parts own capped below share earned earned_currency conversion"
    " amount currency"
).split()


class RowJson:
    """`Row.model_dump_json()` of `RowValues`, without making the model: the same keys in the
    same order, decimals as plain strings. Strings met before are escaped once."""

    def __init__(self) -> None:
        self._strings: dict[str, str] = {}
        # The parts of one plan's price of one kind of deal are one tuple shared by every row
        # priced alike (`domain.ib.amounts.Pricer`): written once, found by identity.
        self._parts: dict[int, tuple[tuple[PartValues, ...], str]] = {}

    def _s(self, value: str) -> str:
        found = self._strings.get(value)
        if found is None:
            if len(self._strings) > 100_000:
                self._strings.clear()
            found = self._strings[value] = json.dumps(value, ensure_ascii=False)
        return found

    def _d(self, value: Decimal | None) -> str:
        return "null" if value is None else f'"{plain(value)}"'

    def _parts_json(self, parts: tuple[PartValues, ...]) -> str:
        found = self._parts.get(id(parts))
        if found is not None and found[0] is parts:
            return found[1]
        s = self._s
        text = ",".join(
            f'{{"basis":{s(basis)},"rule":{rule},"quantity":"{plain(quantity)}",'
            f'"rate":"{plain(rate)}","amount":"{plain(amount)}","note":{s(note)}}}'
            for basis, rule, quantity, rate, amount, note in parts
        )
        if len(self._parts) > 100_000:
            self._parts.clear()
        self._parts[id(parts)] = (parts, text)  # kept alive here, so its id is not reused
        return text

    def tail(self, t: RowTail) -> str:
        """The JSON object of a tail's keys (`TAIL_KEYS`), written as `__call__` writes them."""
        s, d = self._s, self._d
        conversion = (
            "null"
            if t.conversion is None
            else f'{{"source":{s(t.conversion[0])},"target":{s(t.conversion[1])},'
            f'"rate":"{plain(t.conversion[2])}"}}'
        )
        return (
            f'{{"model":{s(t.model)},"plan":{s(t.plan)},"version":{t.version},'
            f'"volume":"{plain(t.volume)}","parts":[{self._parts_json(t.parts)}],'
            f'"own":"{plain(t.own)}","capped":{d(t.capped)},"below":{d(t.below)},'
            f'"share":{d(t.share)},"earned":"{plain(t.earned)}",'
            f'"earned_currency":{s(t.earned_currency)},"conversion":{conversion},'
            f'"amount":"{plain(t.amount)}","currency":{s(t.currency)}}}'
        )

    def __call__(self, r: RowValues) -> str:
        s, d = self._s, self._d
        parts = self._parts_json(r.parts)
        conversion = (
            "null"
            if r.conversion is None
            else f'{{"source":{s(r.conversion[0])},"target":{s(r.conversion[1])},'
            f'"rate":"{plain(r.conversion[2])}"}}'
        )
        return (
            f'{{"deal":{r.deal},"login":{r.login},"time":{r.time},"symbol":{s(r.symbol)},'
            f'"ib":{s(r.ib)},"level":{r.level},"direct_ib":{s(r.direct_ib)},'
            f'"model":{s(r.model)},"plan":{s(r.plan)},"version":{r.version},'
            f'"volume":"{plain(r.volume)}","volume_why":{s(r.volume_why)},"parts":[{parts}],'
            f'"own":"{plain(r.own)}","capped":{d(r.capped)},"below":{d(r.below)},'
            f'"share":{d(r.share)},"earned":"{plain(r.earned)}",'
            f'"earned_currency":{s(r.earned_currency)},"conversion":{conversion},'
            f'"amount":"{plain(r.amount)}","currency":{s(r.currency)}}}'
        )
