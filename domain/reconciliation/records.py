"""What the three-way reconciliation reads and what it finds.

The sides are plain tuples (`NamedTuple`): a day of a large broker is a million of them, read
from the database by the scheduled run, and a tuple is made several times faster than a model.
Amounts are integer minor units beside their ISO 4217 currency (`domain.money`), never floats.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import NamedTuple

from domain.money import Money


class Side(StrEnum):
    MT5 = "mt5"
    LEDGER = "ledger"
    PSP = "psp"


class BreakType(StrEnum):
    """Every kind of break, in the order the output lists them."""

    MISSING_IN_MT5 = "missing_in_mt5"
    MISSING_IN_LEDGER = "missing_in_ledger"
    MISSING_AT_PSP = "missing_at_psp"
    DUPLICATE = "duplicate"
    AMOUNT_MISMATCH = "amount_mismatch"
    FEE_DIFFERENCE = "fee_difference"
    FX_DIFFERENCE = "fx_difference"
    CUT_OFF_TIMING = "cut_off_timing"
    CHARGEBACK = "chargeback"
    MANUAL_ADJUSTMENT = "manual_adjustment"
    BALANCE_MISMATCH = "balance_mismatch"
    # The scheduled run's (domain.reconciliation.waiting), from the payments BrokerFlow still
    # waits on the processor for: settled at the processor, the webhook never arrived; and
    # sent to the processor longer ago than allowed with nothing in its settlement report.
    LOST_WEBHOOK = "lost_webhook"
    STUCK_AT_PROCESSOR = "stuck_at_processor"


BREAK_ORDER = {kind: n for n, kind in enumerate(BreakType)}


class Flow(StrEnum):
    """What a processor's settlement row (or the ledger's processor movement) is."""

    COLLECTION = "collection"  # money in: CardCo `charge`, BankCo `incoming`
    PAYOUT = "payout"
    REFUND = "refund"
    CHARGEBACK = "chargeback"


# The processors' settlement `type` values (psp_adapter's `SettlementLine.kind`).
SETTLEMENT_KINDS: dict[str, Flow] = {
    "charge": Flow.COLLECTION,
    "incoming": Flow.COLLECTION,
    "payout": Flow.PAYOUT,
    "refund": Flow.REFUND,
    "chargeback": Flow.CHARGEBACK,
}

# The purposes BrokerFlow writes before the reference in a balance deal's comment
# (`domain.money_flows.mt5_comment`: `dep BF…`, `wd BF…`, `ibp <hex>`, …).
BROKERFLOW_PURPOSES = frozenset({"dep", "wd", "ret", "tro", "tri", "rev", "ibp"})

# MT5 deal actions that are trades, not balance operations (reference 4.1); they are skipped.
TRADE_ACTIONS = frozenset({0, 1, 13, 14})


def reference_of(comment: str) -> str | None:
    """The movement reference in a BrokerFlow deal comment, or None for any other comment."""
    purpose, _, reference = comment.strip().partition(" ")
    if purpose in BROKERFLOW_PURPOSES and reference and " " not in reference:
        return reference
    return None


class Mt5Deal(NamedTuple):
    """One MT5 balance operation (a deal whose Action is not a trade). `amount_minor` is its
    Profit in the account's currency; positive puts money on the account."""

    deal: int
    login: int
    time: datetime
    action: int
    amount_minor: int
    currency: str
    comment: str


class LedgerMt5Movement(NamedTuple):
    """The ledger's side of a balance operation: a posting on an account's `mt5:` mirror, as
    money onto the MT5 account (positive when money went onto it: the ledger credits the
    mirror then, so this is the posting's amount negated, `ledger.onto_mt5`). `key` is the
    journal entry's key."""

    key: str
    reference: str
    login: int
    time: datetime
    amount_minor: int
    currency: str


class LedgerPspMovement(NamedTuple):
    """The ledger's side of a processor movement: a posting on `psp:<provider>:<ccy>`, positive
    for money the processor collected. `fee_minor` is the fee the ledger expects, if it knows."""

    key: str
    reference: str
    provider: str
    flow: Flow
    time: datetime
    amount_minor: int
    currency: str
    fee_minor: int | None = None


class PspRow(NamedTuple):
    """One row of a processor's daily settlement report (signed gross, fee, net)."""

    provider: str
    provider_ref: str
    reference: str
    flow: Flow
    day: date
    gross_minor: int
    fee_minor: int
    net_minor: int
    currency: str


class AccountBalance(NamedTuple):
    """An MT5 account's balance against the ledger's mirror of it, at the cut-off.
    `ledger_minor` is what the ledger says BrokerFlow put on the account (the mirror's balance
    negated: the mirror is credited for money onto MT5). `trading_minor` is what trading
    (profit, swap, commission) changed, which the ledger does not mirror."""

    login: int
    currency: str
    mt5_minor: int
    ledger_minor: int
    trading_minor: int = 0


class Period(NamedTuple):
    """The day reconciled: [start, end) with the cut-off window around both ends."""

    day: date
    start: datetime
    end: datetime
    window: timedelta
    match_window: timedelta

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def near_cut_off(self, at: datetime) -> bool:
        return abs(at - self.end) <= self.window or abs(at - self.start) <= self.window


def period_of(
    day: date,
    cut_off: time,
    window: timedelta = timedelta(minutes=5),
    match_window: timedelta = timedelta(hours=1),
) -> Period:
    """The day `day` runs from its own cut-off to the next day's (`cut_off` carries its zone)."""
    start = datetime.combine(day, cut_off)
    if start.tzinfo is None:
        raise ValueError("the cut-off needs a time zone")
    return Period(day, start, start + timedelta(days=1), window, match_window)


class Sides(NamedTuple):
    mt5: tuple[Mt5Deal, ...] | list[Mt5Deal]
    ledger_mt5: tuple[LedgerMt5Movement, ...] | list[LedgerMt5Movement]
    ledger_psp: tuple[LedgerPspMovement, ...] | list[LedgerPspMovement]
    psp: tuple[PspRow, ...] | list[PspRow]
    balances: tuple[AccountBalance, ...] | list[AccountBalance] = ()


class Break(NamedTuple):
    """One break. `key` names what it is about, the same from run to run (a case follows it);
    `amount_minor` is what is at stake (the difference, for a mismatch)."""

    type: BreakType
    key: str
    amount_minor: int
    currency: str
    found_in: tuple[Side, ...]
    missing_from: tuple[Side, ...] = ()
    reference: str | None = None
    deal: int | None = None
    login: int | None = None
    provider: str | None = None
    expected_minor: int | None = None
    actual_minor: int | None = None
    expected_currency: str | None = None
    detail: str = ""

    def sort_key(self) -> tuple[int, str, int, str, int, str]:
        """Type, key, deal; then what tells two breaks of one key apart (never input order)."""
        return (
            BREAK_ORDER[self.type],
            self.key,
            self.deal or 0,
            self.currency,
            self.amount_minor,
            self.detail,
        )

    def amount(self) -> Money:
        return Money.from_minor_units(self.amount_minor, self.currency)


class Result(NamedTuple):
    """The breaks in their order, and the keys of yesterday's timing breaks matched now
    (an item across the cut-off found its other side): their cases close themselves."""

    breaks: list[Break]
    cleared: list[str]
    matched: int


def _decimal_text(units: int | None, currency: str) -> str | None:
    if units is None:
        return None
    return str(Money.from_minor_units(units, currency).amount)


def break_json(found: Break) -> dict[str, object]:
    """A break as the what-if command prints it and the scheduled run stores it."""
    other = found.expected_currency or found.currency
    return {
        "type": found.type.value,
        "key": found.key,
        "reference": found.reference,
        "deal": found.deal,
        "login": found.login,
        "provider": found.provider,
        "amount": _decimal_text(found.amount_minor, found.currency),
        "currency": found.currency,
        "found_in": [side.value for side in found.found_in],
        "missing_from": [side.value for side in found.missing_from],
        "expected": _decimal_text(found.expected_minor, other),
        "actual": _decimal_text(found.actual_minor, found.currency),
        "expected_currency": None if found.expected_minor is None else other,
        "detail": found.detail,
    }
