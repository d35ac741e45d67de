"""What one IB's plan version pays on one deal, before it is shared across the tree.

Within each basis the first rule (in the plan's order) that matches the deal applies; the bases
add up. Every part keeps its rule, the quantity the rate multiplied and a note saying how that
quantity was made, in the plan's currency (amounts from a deal's own currencies are converted
with the document's rates). Nothing is rounded here.

A deal is priced once per level of its chain, so `Pricer` keeps what does not change from one
level or deal to the next: which rules of a version match a (group, symbol, path), and, per
deal, the volume the anti-scalping rules let through under each (minimum hold, minimum points,
counting). Parts are plain tuples (`PartValues`) until a caller wants the `Part` model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, NamedTuple

from pydantic import PlainSerializer

from domain.errors import InvalidInput
from domain.ib.document import (
    Basis,
    Counting,
    Deal,
    Entry,
    Frozen,
    Lookups,
    PlanVersion,
    PreviewDocument,
    Rule,
    Symbol,
)
from domain.ib.legs import DealLegs, Leg, lots, show_lots
from domain.revenue import captured_markup_points, captured_spread_points


def plain(value: Decimal) -> str:
    """A decimal as JSON text without exponent: 0.5, 12.30, 0."""
    return format(value, "f")


Dec = Annotated[Decimal, PlainSerializer(plain, return_type=str, when_used="json")]
HALF = Decimal("0.5")
PERCENT = Decimal(100)
TRADE_BASES = (Basis.PER_LOT, Basis.PER_DEAL, Basis.SPREAD_PERCENT, Basis.COMMISSION_PERCENT)
_PERCENT_BASES = (Basis.SPREAD_PERCENT, Basis.COMMISSION_PERCENT)

# (basis, rule index, quantity, rate as written, amount, note): a `Part`'s fields, in its order.
PartValues = tuple[Basis, int, Decimal, Decimal, Decimal, str]


class Part(Frozen):
    """amount = rate x quantity (rate / 100 x quantity for the percent bases)."""

    basis: Basis
    rule: int
    quantity: Dec
    rate: Dec
    amount: Dec
    note: str

    @classmethod
    def of(cls, index: int, rule: Rule, quantity: Decimal, note: str) -> Part:
        return cls.from_values(part_values(index, rule, quantity, note))

    @classmethod
    def from_values(cls, values: PartValues) -> Part:
        basis, rule, quantity, rate, amount, note = values
        return cls.model_construct(
            basis=basis, rule=rule, quantity=quantity, rate=rate, amount=amount, note=note
        )


def part_values(index: int, rule: Rule, quantity: Decimal, note: str) -> PartValues:
    rate = rule.rate / PERCENT if rule.basis in _PERCENT_BASES else rule.rate
    return (rule.basis, index, quantity, rule.rate, rate * quantity, note)


class Own(NamedTuple):
    """The plan's amount on the deal, as if this IB were the only one paid."""

    amount: Decimal
    parts: tuple[PartValues, ...]
    volume: Decimal
    why: str

    @classmethod
    def of(cls, parts: list[PartValues], volume: Decimal, why: str) -> Own:
        return cls(sum((p[4] for p in parts), Decimal(0)), tuple(parts), volume, why)


def _first_rule(version: PlanVersion, basis: Basis, **subject: str) -> tuple[int, Rule] | None:
    return next(
        ((i, r) for i, r in enumerate(version.rules) if r.basis is basis and r.matches(**subject)),
        None,
    )


def _qualifying(
    deal: Deal, symbol: Symbol, leg: Leg, version: PlanVersion
) -> tuple[int, list[str]]:
    """The part of a leg the anti-scalping rules let through, and why the rest is not."""
    if not leg.closes:
        return leg.volume, []
    checks = version.min_hold_seconds or version.min_points
    passed, notes = 0, []
    for s in leg.slices:
        if s.opened_at is None or s.open_price is None:
            if checks:
                notes.append(f"{show_lots(s.volume)} opened before the document: not checked")
            passed += s.volume
            continue
        held = deal.time - s.opened_at
        moved = abs(deal.price - s.open_price) / symbol.point
        if held < version.min_hold_seconds:
            notes.append(
                f"{show_lots(s.volume)} held {held} s < {version.min_hold_seconds} s: not counted"
            )
        elif moved < version.min_points:
            notes.append(
                f"{show_lots(s.volume)} moved {plain(moved.normalize())} points"
                f" < {plain(version.min_points)}: not counted"
            )
        else:
            passed += s.volume
    return passed, notes


def captured_points(deal: Deal, symbol: Symbol, of: str) -> Decimal | None:
    """The spread (`of` "spread") or markup ("markup") a deal captured, in points per round
    trip as a symbol's fixed `spread_points` / `markup_points` are given (half of it is paid per
    market side): the spread, 2 s (Price - raw mid) / point (`domain.revenue`), and the markup,
    twice this side's s (Price - raw side) / point. Never below 0 (a fill better than the
    market captured nothing). None when the deal carries no raw quote (MarketBid/MarketAsk 0)
    or is a close-by (it crossed no market: the symbol's fixed figure is used as before)."""
    if deal.entry == Entry.OUT_BY:
        return None
    if of == "spread":
        points = captured_spread_points(
            deal.action, deal.price, deal.market_bid, deal.market_ask, symbol.digits
        )
    else:
        markup = captured_markup_points(
            deal.action, deal.price, deal.market_bid, deal.market_ask, symbol.digits
        )
        points = None if markup is None else 2 * markup
    if points is None:
        return None
    return max(points, Decimal(0))


def _spread_factor(leg: Leg, counting: Counting) -> Decimal:
    """The share of one spread a counted leg carries: half per market side, none for close-by;
    a round-turn close carries its opening's half as well."""
    own_side = HALF if leg.market else Decimal(0)
    return own_side + HALF if counting is Counting.ROUND_TURN else own_side


class _Counted(NamedTuple):
    """A trade deal under one (minimum hold, minimum points, counting): per leg, the volume the
    anti-scalping rules let through (`passed`), which legs the counting counts, the volume
    counted (and in lots) and why. `shape` is what of it the parts depend on."""

    passed: tuple[int, ...]
    counted: tuple[int, ...]
    volume: int
    lots: Decimal
    why: str
    shape: tuple[tuple[int, ...], tuple[int, ...], tuple[bool, ...]]


@dataclass(frozen=True, slots=True)
class _Measured:
    """A trade deal under one plan version."""

    lookups: Lookups
    dl: DealLegs
    version: PlanVersion
    passed: tuple[int, ...]
    counted: tuple[int, ...]
    volume: int

    def per_lot(self, rule: Rule) -> tuple[Decimal, str]:
        quantity, note = lots(self.volume), f"{show_lots(self.volume)} lots"
        if rule.per_units is not None:
            size = self.lookups.doc.symbols[self.dl.deal.symbol].contract_size
            quantity = quantity * size / rule.per_units
            note += f" x {plain(size)} / {plain(rule.per_units)} units"
        return quantity, note

    def per_deal(self) -> tuple[Decimal, str]:
        return Decimal(1 if self.volume else 0), f"{1 if self.volume else 0} deal"

    def spread(self, rule: Rule) -> tuple[Decimal, str]:
        deal = self.dl.deal
        name = deal.symbol
        symbol = self.lookups.doc.symbols[name]
        captured = captured_points(deal, symbol, rule.of)
        points = captured
        if points is None:
            points = symbol.spread_points if rule.of == "spread" else symbol.markup_points
        if points is None or symbol.profit_currency is None:
            raise InvalidInput(
                f"symbol {name}: a {rule.of} rule needs {rule.of}_points and profit_currency"
                " (or deals with MarketBid and MarketAsk)"
            )
        counting = self.version.counting
        weight = sum(
            (
                lots(self.passed[i]) * _spread_factor(self.dl.legs[i], counting)
                for i in self.counted
            ),
            Decimal(0),
        )
        value = points * symbol.point * symbol.contract_size * weight
        if captured is not None:
            quote = f"{plain(deal.market_bid)}/{plain(deal.market_ask)}"
            captured_how = f" (captured: Price {plain(deal.price)} vs MarketBid/MarketAsk {quote})"
        else:
            captured_how = ""
        note = (
            f"{plain(points)} {rule.of} points{captured_how} x {plain(symbol.point)}"
            f" x {plain(symbol.contract_size)} x {plain(weight)} spread-weighted lots"
            f" = {plain(value)} {symbol.profit_currency}"
        )
        return self._converted(value, symbol.profit_currency, note)

    def commission(self) -> tuple[Decimal, str] | None:
        """What the broker charged on the deal, for the volume the rules let through."""
        deal = self.dl.deal
        charged = max(Decimal(0), -deal.commission)
        if not charged:
            return None
        qualifying = sum(self.passed)
        currency = self.lookups.doc.accounts[deal.login].currency
        note = f"commission {plain(charged)} {currency}"
        if qualifying != deal.volume:
            note += f" x {show_lots(qualifying)}/{show_lots(deal.volume)} lots qualifying"
        return self._converted(charged * qualifying / deal.volume, currency, note)

    def _converted(self, value: Decimal, currency: str, note: str) -> tuple[Decimal, str]:
        target = self.version.currency
        if currency == target:
            return value, note
        rate = self.lookups.rate(currency, target)
        return value * rate, f"{note} x {plain(rate)} {target}/{currency}"


class Pricer:
    """Prices deals under plan versions for one document (see the module's docstring)."""

    def __init__(self, lookups: Lookups) -> None:
        self.lookups = lookups
        self._rules: dict[tuple[int, str, str, str], tuple[tuple[Basis, int, Rule], ...]] = {}
        self._checks: dict[int, tuple[int, str, Counting]] = {}
        self._counted: dict[tuple[int, int], _Counted] = {}
        self._accounts: dict[int, tuple[str, str]] = {}
        # What a version's parts come to, for everything they depend on (the `_parts_key`).
        self._parts: dict[tuple[int, int, int], tuple[Decimal, tuple[PartValues, ...]]] = {}
        # Values met before, one object each (their ids make `_parts`' keys), and each deal's.
        self._interned: dict[tuple[object, ...], Any] = {}
        self._subjects: dict[int, tuple[str, str, str, int, str, object]] = {}
        # Per chain of versions (by ids, the versions kept), which levels count alike.
        self._firsts: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._kept_versions: list[Sequence[PlanVersion]] = []

    def _trade_rules(
        self, version: PlanVersion, group: str, symbol: str, path: str
    ) -> tuple[tuple[Basis, int, Rule], ...]:
        """The first matching rule of each trade basis, in `TRADE_BASES` order."""
        key = (id(version), group, symbol, path)
        found = self._rules.get(key)
        if found is None:
            matches = []
            for basis in TRADE_BASES:
                first = _first_rule(version, basis, group=group, symbol=symbol, path=path)
                if first is not None:
                    matches.append((basis, *first))
            found = self._rules[key] = tuple(matches)
        return found

    def _checks_of(self, version: PlanVersion) -> tuple[int, str, Counting]:
        """What counting reads of a version (one object per value)."""
        checks = self._checks.get(id(version))
        if checks is None:
            # min_points as written: 5 and 5.0 are the same rule but not the same note.
            value = (version.min_hold_seconds, str(version.min_points), version.counting)
            checks = self._checks[id(version)] = self._interned.setdefault(value, value)
        return checks

    def _count(self, dl: DealLegs, symbol: Symbol, version: PlanVersion) -> _Counted:
        key = (dl.deal.ticket, id(self._checks_of(version)))
        found = self._counted.get(key)
        if found is None:
            deal = dl.deal
            passed, notes = [], []
            for leg in dl.legs:
                volume, leg_notes = _qualifying(deal, symbol, leg, version)
                passed.append(volume)
                notes += leg_notes
            per_side = version.counting is Counting.PER_SIDE
            counted = tuple(i for i, leg in enumerate(dl.legs) if leg.closes or per_side)
            volume = sum(passed[i] for i in counted)
            counting = "per side" if per_side else "round turn counts closes"
            why = "; ".join([dl.description, *notes, f"{counting}: {show_lots(volume)}"])
            value = (tuple(passed), counted, tuple(leg.market for leg in dl.legs))
            shape = self._interned.setdefault(value, value)
            found = _Counted(tuple(passed), counted, volume, lots(volume), why, shape)
            self._counted[key] = found
        return found

    def _account(self, login: int) -> tuple[str, str]:
        found = self._accounts.get(login)
        if found is None:
            account = self.lookups.doc.accounts[login]
            found = self._accounts[login] = (account.group, account.currency)
        return found

    def subject(self, deal: Deal) -> tuple[str, str, str, int, str, object]:
        """What the parts read of the deal beyond its counted shape (the symbol, the account's
        group and currency, its Volume and Commission as written, since 1.0 and 1.00 make
        different notes, and its raw quote with its price and side when it has one): one
        object per value."""
        subject = self._subjects.get(deal.ticket)
        if subject is None:
            group, currency = self._account(deal.login)
            # The raw quote a spread rule may price with (None without one: the symbol's fixed
            # spread, alike for every such deal).
            quote = (
                (
                    deal.entry,
                    deal.action,
                    str(deal.price),
                    str(deal.market_bid),
                    str(deal.market_ask),
                )
                if deal.market_bid or deal.market_ask
                else None
            )
            value = (deal.symbol, group, currency, deal.volume, str(deal.commission), quote)
            subject = self._subjects[deal.ticket] = self._interned.setdefault(value, value)
        return subject

    def counted(self, dl: DealLegs, versions: Sequence[PlanVersion]) -> list[_Counted]:
        """`_count` under each of `versions`, counted once per distinct rules."""
        symbol = self.lookups.doc.symbols[dl.deal.symbol]
        key = tuple(map(id, versions))
        firsts = self._firsts.get(key)
        if firsts is None:
            # Per level, the first level counting by the same rules.
            ids = [id(self._checks_of(v)) for v in versions]
            firsts = self._firsts[key] = tuple(ids.index(i) for i in ids)
            self._kept_versions.append(versions)
        found: list[_Counted] = []
        for level, first in enumerate(firsts):
            found.append(
                self._count(dl, symbol, versions[level]) if first == level else found[first]
            )
        return found

    def trade(self, dl: DealLegs, version: PlanVersion) -> Own:
        symbol = self.lookups.doc.symbols[dl.deal.symbol]
        counted = self._count(dl, symbol, version)
        # Everything the parts read: the version, the deal's subject and its counted shape
        # (one object per value, kept here, so the key is made of their ids).
        subject = self.subject(dl.deal)
        key = (id(version), id(subject), id(counted.shape))
        found = self._parts.get(key)
        if found is None:
            found = self._parts[key] = self._trade_parts(dl, symbol, subject[1], version, counted)
        return Own(found[0], found[1], counted.lots, counted.why)

    def _trade_parts(
        self, dl: DealLegs, symbol: Symbol, group: str, version: PlanVersion, counted: _Counted
    ) -> tuple[Decimal, tuple[PartValues, ...]]:
        measured = _Measured(
            self.lookups, dl, version, counted.passed, counted.counted, counted.volume
        )
        parts: list[PartValues] = []
        for basis, index, rule in self._trade_rules(version, group, dl.deal.symbol, symbol.path):
            if basis is Basis.COMMISSION_PERCENT:
                measure = measured.commission()
            elif not counted.counted:
                measure = None  # nothing this counting counts on the deal
            elif basis is Basis.PER_LOT:
                measure = measured.per_lot(rule)
            elif basis is Basis.PER_DEAL:
                measure = measured.per_deal()
            else:
                measure = measured.spread(rule)
            if measure is not None:
                parts.append(part_values(index, rule, *measure))
        return sum((p[4] for p in parts), Decimal(0)), tuple(parts)

    def first_deposit(self, deal: Deal, version: PlanVersion) -> Own:
        account = self.lookups.doc.accounts[deal.login]
        why = f"first deposit {plain(deal.profit)} {account.currency}"
        found = _first_rule(version, Basis.CPA, group=account.group)
        if found is None:
            return Own.of([], Decimal(0), why)
        index, rule = found
        deposit = deal.profit * self.lookups.rate(account.currency, version.currency)
        qualifies = deposit >= rule.min_deposit
        note = (
            f"deposit {plain(deposit)} {version.currency} {'>=' if qualifies else '<'} minimum"
            f" {plain(rule.min_deposit)}"
        )
        return Own.of([part_values(index, rule, Decimal(qualifies), note)], Decimal(0), why)


def price_trade(doc: PreviewDocument, dl: DealLegs, version: PlanVersion) -> Own:
    return Pricer(Lookups(doc)).trade(dl, version)


def price_first_deposit(doc: PreviewDocument, deal: Deal, version: PlanVersion) -> Own:
    return Pricer(Lookups(doc)).first_deposit(deal, version)
