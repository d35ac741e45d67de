"""Margin-call and stop-out proximity of one account (issue 15, live view), pure.

MT5's rule (reference 5.2): `MarginLevel` = Equity / Margin x 100 (%), 0 when Margin is 0; a
margin call when the level is at or below the group's `MarginCall`, a stop out when at or
below `MarginStopOut`, both in percent when the group's `MarginSOMode` is 0. With
`MarginSOMode` 1 (money) BrokerFlow reads **both** levels as amounts of the deposit currency
and compares the account's Equity with them (the reference says "in money" for the stop out
only; the reading is unverified).

`classify` adds one state of its own before the margin call: `near_margin_call`, when the
level (or equity) is at or below MarginCall x (1 + headroom) (`DEFAULT_HEADROOM` 0.2: within
20 % above the margin-call line). An account with no margin (Margin 0) has nothing at risk,
whatever its equity.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

HUNDRED = Decimal(100)
DEFAULT_HEADROOM = Decimal("0.2")

# MT5 group `MarginSOMode` (reference 4.6).
SO_PERCENT = 0
SO_MONEY = 1


class MarginState(StrEnum):
    FINE = "fine"
    NEAR_MARGIN_CALL = "near_margin_call"
    MARGIN_CALL = "margin_call"
    STOP_OUT = "stop_out"

    @property
    def severity(self) -> int:
        """0 fine .. 3 stop out: a lower level never has a lower severity."""
        return _SEVERITY[self]


_SEVERITY = {
    MarginState.FINE: 0,
    MarginState.NEAR_MARGIN_CALL: 1,
    MarginState.MARGIN_CALL: 2,
    MarginState.STOP_OUT: 3,
}

# The states an alert is raised for, mildest first.
AT_RISK = (MarginState.NEAR_MARGIN_CALL, MarginState.MARGIN_CALL, MarginState.STOP_OUT)


@dataclass(frozen=True, slots=True)
class MarginLimits:
    """A group's `MarginCall`, `MarginStopOut` and `MarginSOMode` (0 percent, 1 money)."""

    margin_call: Decimal
    stop_out: Decimal
    so_mode: int = SO_PERCENT

    @property
    def by_money(self) -> bool:
        return self.so_mode == SO_MONEY


@dataclass(frozen=True, slots=True)
class MarginCheck:
    """One account's verdict. `level` is Equity / Margin x 100 (None when Margin is 0);
    `measure` is what was compared with the limits (the level, or the equity in money mode;
    None when nothing is at risk); `near_limit` is MarginCall x (1 + headroom)."""

    state: MarginState
    level: Decimal | None
    measure: Decimal | None
    near_limit: Decimal

    def limit_of(self, state: MarginState, limits: MarginLimits) -> Decimal:
        """The line `state` is reached at or below."""
        if state is MarginState.STOP_OUT:
            return limits.stop_out
        if state is MarginState.MARGIN_CALL:
            return limits.margin_call
        return self.near_limit


def margin_level(equity: Decimal, margin: Decimal) -> Decimal | None:
    """Equity / Margin x 100 (%), None when there is no margin (MT5 prints 0)."""
    if margin <= 0:
        return None
    return equity / margin * HUNDRED


def classify(
    equity: Decimal,
    margin: Decimal,
    limits: MarginLimits,
    headroom: Decimal = DEFAULT_HEADROOM,
) -> MarginCheck:
    """Where the account stands: stop out (at or below MarginStopOut), margin call (at or
    below MarginCall), near a margin call (at or below MarginCall x (1 + headroom)), else fine.
    The stop out is checked first, so a group whose stop-out line is above its margin-call
    line still stops out."""
    if headroom < 0:
        raise ValueError("the margin-call headroom must not be negative")
    near = limits.margin_call * (1 + headroom)
    level = margin_level(equity, margin)
    if level is None:
        return MarginCheck(MarginState.FINE, None, None, near)
    measure = equity if limits.by_money else level
    if measure <= limits.stop_out:
        state = MarginState.STOP_OUT
    elif measure <= limits.margin_call:
        state = MarginState.MARGIN_CALL
    elif measure <= near:
        state = MarginState.NEAR_MARGIN_CALL
    else:
        state = MarginState.FINE
    return MarginCheck(state, level, measure, near)


def percent(level: Decimal) -> str:
    """A margin level as shown: 2 decimals, half up (as MT5 prints `MarginLevel`)."""
    return format(level.quantize(Decimal("0.01"), ROUND_HALF_UP), "f")
