"""Hand-built days for the reconciliation tests: payments consistent on all three sides, and the
faults a test injects into one of them (each with the break type it must give)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from domain.reconciliation.records import (
    AccountBalance,
    BreakType,
    Flow,
    LedgerMt5Movement,
    LedgerPspMovement,
    Mt5Deal,
    PspRow,
    Sides,
    period_of,
)

DAY = date(2026, 12, 7)
PERIOD = period_of(DAY, time(0, tzinfo=UTC))
START = PERIOD.start


@dataclass(frozen=True)
class Payment:
    """One deposit (processor -> ledger -> MT5) or withdrawal (MT5 -> ledger -> processor)."""

    n: int
    login: int
    amount_minor: int  # > 0
    currency: str
    deposit: bool
    minute: int  # of the day, kept away from the cut-off by the caller

    @property
    def reference(self) -> str:
        return f"BF{self.n:020X}"

    @property
    def at(self) -> datetime:
        return START + timedelta(minutes=self.minute)

    @property
    def signed(self) -> int:
        return self.amount_minor if self.deposit else -self.amount_minor

    @property
    def fee(self) -> int:
        return 100 if not self.deposit else self.amount_minor // 50


@dataclass
class Day:
    deals: list[Mt5Deal] = field(default_factory=list)
    ledger_mt5: list[LedgerMt5Movement] = field(default_factory=list)
    ledger_psp: list[LedgerPspMovement] = field(default_factory=list)
    psp: list[PspRow] = field(default_factory=list)
    balances: list[AccountBalance] = field(default_factory=list)

    def sides(self) -> Sides:
        return Sides(self.deals, self.ledger_mt5, self.ledger_psp, self.psp, self.balances)


def consistent(payments: list[Payment]) -> Day:
    day = Day()
    funded: dict[int, tuple[str, int]] = {}
    for p in payments:
        ref, step = p.reference, "to-mt5" if p.deposit else "from-mt5"
        purpose = "dep" if p.deposit else "wd"
        provider, flow = ("cardco", Flow.COLLECTION) if p.deposit else ("bankco", Flow.PAYOUT)
        day.deals.append(
            Mt5Deal(
                7000 + p.n,
                p.login,
                p.at + timedelta(seconds=2),
                2,
                p.signed,
                p.currency,
                f"{purpose} {ref}",
            )
        )
        day.ledger_mt5.append(
            LedgerMt5Movement(f"{ref}:{step}", ref, p.login, p.at, p.signed, p.currency)
        )
        day.ledger_psp.append(
            LedgerPspMovement(
                f"{ref}:{'received' if p.deposit else 'paid-out'}",
                ref,
                provider,
                flow,
                p.at - timedelta(seconds=30) if p.deposit else p.at + timedelta(minutes=1),
                p.signed,
                p.currency,
                p.fee,
            )
        )
        day.psp.append(
            PspRow(
                provider,
                f"pay_{p.n}",
                ref,
                flow,
                DAY,
                p.signed,
                p.fee,
                p.signed - p.fee,
                p.currency,
            )
        )
        _, total = funded.get(p.login, (p.currency, 0))
        funded[p.login] = (p.currency, total + p.signed)
    for login, (currency, total) in sorted(funded.items()):
        day.balances.append(AccountBalance(login, currency, total + 12_345, total, 12_345))
    return day


Fault = Callable[[Day, Payment], None]


def _find(items: Sequence[LedgerMt5Movement | LedgerPspMovement | PspRow], reference: str) -> int:
    return next(n for n, item in enumerate(items) if item.reference == reference)


def drop_deal(day: Day, p: Payment) -> None:
    day.deals = [d for d in day.deals if not d.comment.endswith(p.reference)]


def drop_ledger_mt5(day: Day, p: Payment) -> None:
    day.ledger_mt5.pop(_find(day.ledger_mt5, p.reference))


def drop_psp_row(day: Day, p: Payment) -> None:
    day.psp.pop(_find(day.psp, p.reference))


def drop_ledger_psp(day: Day, p: Payment) -> None:
    day.ledger_psp.pop(_find(day.ledger_psp, p.reference))


def duplicate_deal(day: Day, p: Payment) -> None:
    deal = next(d for d in day.deals if d.comment.endswith(p.reference))
    day.deals.append(deal._replace(deal=900_000 + p.n, time=deal.time + timedelta(seconds=40)))


def deal_amount(day: Day, p: Payment) -> None:
    n = next(n for n, d in enumerate(day.deals) if d.comment.endswith(p.reference))
    day.deals[n] = day.deals[n]._replace(amount_minor=day.deals[n].amount_minor + 1)


def psp_fee(day: Day, p: Payment) -> None:
    n = _find(day.psp, p.reference)
    row = day.psp[n]
    day.psp[n] = row._replace(fee_minor=row.fee_minor + 7, net_minor=row.net_minor - 7)


def psp_currency(day: Day, p: Payment) -> None:
    n = _find(day.psp, p.reference)
    other = "EUR" if day.psp[n].currency != "EUR" else "USD"
    day.psp[n] = day.psp[n]._replace(currency=other)


def at_cut_off(day: Day, p: Payment) -> None:
    """The ledger booked the collection just before midnight; the processor reports it
    tomorrow (the row is not in today's report)."""
    n = _find(day.ledger_psp, p.reference)
    day.ledger_psp[n] = day.ledger_psp[n]._replace(time=PERIOD.end - timedelta(minutes=2))
    drop_psp_row(day, p)


def chargeback(day: Day, p: Payment) -> None:
    day.psp.append(
        PspRow(
            "cardco",
            f"cb_{p.n}",
            p.reference,
            Flow.CHARGEBACK,
            DAY,
            -p.amount_minor,
            1500,
            -p.amount_minor - 1500,
            p.currency,
        )
    )


def manual_deal(day: Day, p: Payment) -> None:
    day.deals.append(Mt5Deal(800_000 + p.n, p.login, p.at, 2, 4_200, p.currency, "bonus by dealer"))


def balance_off(day: Day, p: Payment) -> None:
    n = next(n for n, b in enumerate(day.balances) if b.login == p.login)
    day.balances[n] = day.balances[n]._replace(mt5_minor=day.balances[n].mt5_minor + 1)


# fault, the break type it gives, whether it applies to a deposit only
FAULTS: dict[str, tuple[Fault, BreakType, bool]] = {
    "drop_deal": (drop_deal, BreakType.MISSING_IN_MT5, False),
    "drop_ledger_mt5": (drop_ledger_mt5, BreakType.MISSING_IN_LEDGER, False),
    "drop_psp_row": (drop_psp_row, BreakType.MISSING_AT_PSP, False),
    "drop_ledger_psp": (drop_ledger_psp, BreakType.MISSING_IN_LEDGER, False),
    "duplicate_deal": (duplicate_deal, BreakType.DUPLICATE, False),
    "deal_amount": (deal_amount, BreakType.AMOUNT_MISMATCH, False),
    "psp_fee": (psp_fee, BreakType.FEE_DIFFERENCE, False),
    "psp_currency": (psp_currency, BreakType.FX_DIFFERENCE, False),
    "at_cut_off": (at_cut_off, BreakType.CUT_OFF_TIMING, True),
    "chargeback": (chargeback, BreakType.CHARGEBACK, True),
    "manual_deal": (manual_deal, BreakType.MANUAL_ADJUSTMENT, False),
    "balance_off": (balance_off, BreakType.BALANCE_MISMATCH, False),
}
