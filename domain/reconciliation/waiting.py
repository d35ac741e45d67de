"""Payments BrokerFlow is still waiting on a processor for, against the processors' reports.

The matching (`domain.reconciliation.matching`) sees the ledger and the settlement rows only.
Two breaks need the payment's own state as well, which the scheduled run snapshots beside the
settlement report:

* **lost webhook**: the processor settled a payment (a collection or a payout row in its report)
  that BrokerFlow still waits on the processor for (a deposit `awaiting_funds`, a withdrawal
  `payout_sent`). The matching reports the row as `missing_in_ledger`; with the payment waiting,
  it is the webhook (and the poll) that never arrived: the break becomes `lost_webhook`, on the
  same key, so a case already open on it is carried.
* **stuck at the processor**: a withdrawal sent to the processor (`payout_sent`) longer than the
  allowed age before the run's moment, with no row of its reference in any report the run read:
  `stuck_at_processor`, keyed `stuck:<provider>:<reference>`.

Pure: the moment and the age are given.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import NamedTuple

from domain.money import Money
from domain.reconciliation.records import Break, BreakType, PspRow, Result, Side

# The payment statuses in which BrokerFlow waits for the processor's word (domain.payments):
# a deposit whose page or transfer reference the client has, a withdrawal being paid out.
AWAITING_FUNDS = "awaiting_funds"
PAYOUT_SENT = "payout_sent"
WAITING_STATUSES = frozenset({AWAITING_FUNDS, PAYOUT_SENT})


class WaitingPayment(NamedTuple):
    """A payment waiting on its processor, as the run found it. `since` is when it last
    changed status (when it started waiting)."""

    reference: str
    provider: str
    direction: str  # deposit, withdrawal
    status: str
    since: datetime
    amount_minor: int
    currency: str


def stuck_key(provider: str, reference: str) -> str:
    return f"stuck:{provider}:{reference}"


def _text(units: int, currency: str) -> str:
    return f"{Money.from_minor_units(units, currency).amount} {currency}"


def classify_waiting(
    result: Result,
    rows: Iterable[PspRow],
    waiting: Iterable[WaitingPayment],
    *,
    as_of: datetime,
    stuck_after: timedelta,
) -> Result:
    """`result` with its processor rows missing in the ledger whose payment still waits made
    `lost_webhook`, and a `stuck_at_processor` break for each payout waiting longer than
    `stuck_after` at `as_of` without a row in `rows`; the breaks in their usual order."""
    by_reference = {(w.provider, w.reference): w for w in waiting if w.status in WAITING_STATUSES}
    reported = {(row.provider, row.reference) for row in rows}
    breaks: list[Break] = []
    for found in result.breaks:
        payment = (
            by_reference.get((found.provider, found.reference))
            if found.type is BreakType.MISSING_IN_LEDGER and found.provider and found.reference
            else None
        )
        if payment is None:
            breaks.append(found)
            continue
        breaks.append(
            found._replace(
                type=BreakType.LOST_WEBHOOK,
                detail=f"{found.provider} settled {found.reference}"
                f" ({_text(found.amount_minor, found.currency)})"
                f" but BrokerFlow's {payment.direction}"
                f" is still {payment.status} since {payment.since:%Y-%m-%d %H:%M} UTC:"
                " its webhook was lost",
            )
        )
    for payment in sorted(by_reference.values()):
        if payment.status != PAYOUT_SENT or (payment.provider, payment.reference) in reported:
            continue
        if as_of - payment.since < stuck_after:
            continue
        hours = int((as_of - payment.since).total_seconds() // 3600)
        breaks.append(
            Break(
                BreakType.STUCK_AT_PROCESSOR,
                stuck_key(payment.provider, payment.reference),
                payment.amount_minor,
                payment.currency,
                found_in=(Side.LEDGER,),
                missing_from=(Side.PSP,),
                reference=payment.reference,
                provider=payment.provider,
                detail=f"{payment.direction} {payment.reference}"
                f" ({_text(payment.amount_minor, payment.currency)}) sent to {payment.provider}"
                f" {hours} h ago, still {payment.status}, in no settlement report",
            )
        )
    breaks.sort(key=Break.sort_key)
    return result._replace(breaks=breaks)
