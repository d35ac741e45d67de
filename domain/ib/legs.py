"""Deals into legs: the volume each deal opened and closed, read from the deal alone.

A close leg also says which opened volume it closed (first in, first out within the position,
PositionID), with that volume's open time and price, for the anti-scalping rules. OUT closes
its Volume; INOUT closes VolumeClosed and opens the rest; OUT_BY closes its Volume in its own
position and crossed no spread (`market` is False).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from domain.ib.document import LOT, Deal, Entry


class Slice(NamedTuple):
    """Volume closed out of one earlier opening; open time and price unknown (None) when the
    opening deal is not in the document."""

    volume: int
    opened_at: int | None
    open_price: Decimal | None


class Leg(NamedTuple):
    closes: bool
    volume: int
    market: bool
    slices: tuple[Slice, ...] = ()


class DealLegs(NamedTuple):
    deal: Deal
    legs: tuple[Leg, ...]
    description: str


def _lots(volume: int) -> Decimal:
    return Decimal(volume) / LOT


def _show_lots(volume: int) -> str:
    exact = _lots(volume)
    return f"{exact:.2f}" if exact == round(exact, 2) else f"{exact:.4f}"


# Volumes repeat (0.01, 0.10, 1.00 lots...): each is converted and shown once.
_LOTS: dict[int, Decimal] = {}
_SHOWN: dict[int, str] = {}
_REMEMBERED = 10_000


def lots(volume: int) -> Decimal:
    found = _LOTS.get(volume)
    if found is None:
        found = _lots(volume)
        if len(_LOTS) < _REMEMBERED:
            _LOTS[volume] = found
    return found


def show_lots(volume: int) -> str:
    """0.30, 1.00, 0.0125: two decimals unless the volume needs more."""
    found = _SHOWN.get(volume)
    if found is None:
        found = _show_lots(volume)
        if len(_SHOWN) < _REMEMBERED:
            _SHOWN[volume] = found
    return found


@dataclass
class _Opening:
    time: int
    price: Decimal
    volume: int


class _Book:
    """Open volume per (login, PositionID), oldest first."""

    def __init__(self) -> None:
        self._open: dict[tuple[int, int], deque[_Opening]] = {}

    def open(self, deal: Deal, volume: int) -> Leg:
        key = (deal.login, deal.position_id)
        self._open.setdefault(key, deque()).append(_Opening(deal.time, deal.price, volume))
        return Leg(closes=False, volume=volume, market=True)

    def close(self, deal: Deal, volume: int, market: bool) -> Leg:
        queue = self._open.get((deal.login, deal.position_id), deque())
        slices: list[Slice] = []
        left = volume
        while left and queue:
            oldest = queue[0]
            taken = min(left, oldest.volume)
            slices.append(Slice(taken, oldest.time, oldest.price))
            left -= taken
            oldest.volume -= taken
            if not oldest.volume:
                queue.popleft()
        if left:
            slices.append(Slice(left, None, None))
        return Leg(closes=True, volume=volume, market=market, slices=tuple(slices))


def trade_legs(deals: Iterable[Deal]) -> dict[int, DealLegs]:
    """The legs of every trade deal, by ticket. `deals` must be in (Time, Deal) order."""
    book = _Book()
    found: dict[int, DealLegs] = {}
    for deal in deals:
        if not deal.is_trade:
            continue
        volume, closed = deal.volume, deal.volume_closed
        match deal.entry:  # an int: the document checked it is an Entry
            case Entry.IN:
                legs: tuple[Leg, ...] = (book.open(deal, volume),)
                text = f"IN: {show_lots(volume)} opened"
            case Entry.OUT:
                legs = (book.close(deal, volume, market=True),)
                text = f"OUT: {show_lots(volume)} closed"
            case Entry.INOUT:
                legs = (book.close(deal, closed, market=True), book.open(deal, volume - closed))
                text = f"INOUT: {show_lots(closed)} closed + {show_lots(volume - closed)} opened"
            case Entry.OUT_BY:
                legs = (book.close(deal, volume, market=False),)
                text = f"OUT_BY: {show_lots(volume)} closed by position {deal.position_by_id}"
            case _:
                raise ValueError(f"{deal.entry} is not a valid Entry")
        found[deal.ticket] = DealLegs(deal, legs, text)
    return found
