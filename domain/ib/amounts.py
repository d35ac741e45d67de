"""What one IB's plan version pays on one deal, before it is shared across the tree.

Within each basis the first rule (in the plan's order) that matches the deal applies; the bases
add up. Every part keeps its rule, the quantity the rate multiplied and a note saying how that
quantity was made, in the plan's currency (amounts from a deal's own currencies are converted
with the document's rates). Nothing is rounded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from pydantic import PlainSerializer

from domain.errors import InvalidInput
from domain.ib.document import (
    Basis,
    Counting,
    Deal,
    Frozen,
    PlanVersion,
    PreviewDocument,
    Rule,
    Symbol,
)
from domain.ib.legs import DealLegs, Leg, lots, show_lots


def plain(value: Decimal) -> str:
    """A decimal as JSON text without exponent: 0.5, 12.30, 0."""
    return format(value, "f")


Dec = Annotated[Decimal, PlainSerializer(plain, return_type=str, when_used="json")]
HALF = Decimal("0.5")
PERCENT = Decimal(100)
TRADE_BASES = (Basis.PER_LOT, Basis.PER_DEAL, Basis.SPREAD_PERCENT, Basis.COMMISSION_PERCENT)


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
        percent = rule.basis in (Basis.SPREAD_PERCENT, Basis.COMMISSION_PERCENT)
        rate = rule.rate / PERCENT if percent else rule.rate
        return cls(
            basis=rule.basis,
            rule=index,
            quantity=quantity,
            rate=rule.rate,
            amount=rate * quantity,
            note=note,
        )


@dataclass(frozen=True)
class Own:
    """The plan's amount on the deal, as if this IB were the only one paid."""

    amount: Decimal
    parts: tuple[Part, ...]
    volume: Decimal
    why: str

    @classmethod
    def of(cls, parts: list[Part], volume: Decimal, why: str) -> Own:
        return cls(sum((p.amount for p in parts), Decimal(0)), tuple(parts), volume, why)


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


def _spread_factor(leg: Leg, counting: Counting) -> Decimal:
    """The share of one spread a counted leg carries: half per market side, none for close-by;
    a round-turn close carries its opening's half as well."""
    own_side = HALF if leg.market else Decimal(0)
    return own_side + HALF if counting is Counting.ROUND_TURN else own_side


@dataclass(frozen=True)
class _Measured:
    """A trade deal under one plan version: per leg, the volume the anti-scalping rules let
    through (`passed`), and which legs the version's counting counts."""

    doc: PreviewDocument
    dl: DealLegs
    version: PlanVersion
    passed: tuple[int, ...]
    counted: tuple[int, ...]

    @property
    def volume(self) -> int:
        return sum(self.passed[i] for i in self.counted)

    def per_lot(self, rule: Rule) -> tuple[Decimal, str]:
        quantity, note = lots(self.volume), f"{show_lots(self.volume)} lots"
        if rule.per_units is not None:
            size = self.doc.symbols[self.dl.deal.symbol].contract_size
            quantity = quantity * size / rule.per_units
            note += f" x {plain(size)} / {plain(rule.per_units)} units"
        return quantity, note

    def per_deal(self) -> tuple[Decimal, str]:
        return Decimal(1 if self.volume else 0), f"{1 if self.volume else 0} deal"

    def spread(self, rule: Rule) -> tuple[Decimal, str]:
        name = self.dl.deal.symbol
        symbol = self.doc.symbols[name]
        points = symbol.spread_points if rule.of == "spread" else symbol.markup_points
        if points is None or symbol.profit_currency is None:
            raise InvalidInput(
                f"symbol {name}: a {rule.of} rule needs {rule.of}_points and profit_currency"
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
        note = (
            f"{plain(points)} {rule.of} points x {plain(symbol.point)}"
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
        currency = self.doc.accounts[deal.login].currency
        note = f"commission {plain(charged)} {currency}"
        if qualifying != deal.volume:
            note += f" x {show_lots(qualifying)}/{show_lots(deal.volume)} lots qualifying"
        return self._converted(charged * qualifying / deal.volume, currency, note)

    def _converted(self, value: Decimal, currency: str, note: str) -> tuple[Decimal, str]:
        target = self.version.currency
        if currency == target:
            return value, note
        rate = self.doc.rate(currency, target)
        return value * rate, f"{note} x {plain(rate)} {target}/{currency}"


def price_trade(doc: PreviewDocument, dl: DealLegs, version: PlanVersion) -> Own:
    deal = dl.deal
    symbol = doc.symbols[deal.symbol]
    passed, notes = [], []
    for leg in dl.legs:
        volume, leg_notes = _qualifying(deal, symbol, leg, version)
        passed.append(volume)
        notes += leg_notes
    per_side = version.counting is Counting.PER_SIDE
    counted = tuple(i for i, leg in enumerate(dl.legs) if leg.closes or per_side)
    measured = _Measured(doc, dl, version, tuple(passed), counted)
    counting = "per side" if per_side else "round turn counts closes"
    why = "; ".join([dl.description, *notes, f"{counting}: {show_lots(measured.volume)}"])

    subject = {"group": doc.accounts[deal.login].group, "symbol": deal.symbol, "path": symbol.path}
    parts: list[Part] = []
    for basis in TRADE_BASES:
        found = _first_rule(version, basis, **subject)
        if found is None:
            continue
        index, rule = found
        if basis is Basis.COMMISSION_PERCENT:
            measure = measured.commission()
        elif not counted:
            measure = None  # nothing this counting counts on the deal
        elif basis is Basis.PER_LOT:
            measure = measured.per_lot(rule)
        elif basis is Basis.PER_DEAL:
            measure = measured.per_deal()
        else:
            measure = measured.spread(rule)
        if measure is not None:
            parts.append(Part.of(index, rule, *measure))
    return Own.of(parts, lots(measured.volume), why)


def price_first_deposit(doc: PreviewDocument, deal: Deal, version: PlanVersion) -> Own:
    account = doc.accounts[deal.login]
    why = f"first deposit {plain(deal.profit)} {account.currency}"
    found = _first_rule(version, Basis.CPA, group=account.group)
    if found is None:
        return Own.of([], Decimal(0), why)
    index, rule = found
    deposit = deal.profit * doc.rate(account.currency, version.currency)
    qualifies = deposit >= rule.min_deposit
    note = (
        f"deposit {plain(deposit)} {version.currency} {'>=' if qualifies else '<'} minimum"
        f" {plain(rule.min_deposit)}"
    )
    return Own.of([Part.of(index, rule, Decimal(qualifies), note)], Decimal(0), why)
