"""Three-way matching of one day: MT5 balance deals, the wallet ledger, the processors' reports.

The ledger is the hub. Its postings on an account's `mt5:` mirror are matched to MT5 balance
deals by (login, the reference in the deal's comment, direction); its postings on a processor's
clearing account are matched to that processor's settlement rows by (provider, reference,
flow). Within one key the sides are paired amount for amount first, then in time order; what
is left over on one side is a break. A ledger movement left without a deal is then looked for
among the deals that carry no BrokerFlow comment, on the same login with the same amount within
the match window (a dealer who typed the comment by hand), before it is called missing.

Items outside the day (the caller may pass the edges of the days around it) only serve as the
other side of a pair: they are never reported themselves, and a pair that crosses the cut-off
clears the timing break the day before reported for it (`Result.cleared`).
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from domain.money import Money
from domain.reconciliation.records import (
    BROKERFLOW_PURPOSES,
    TRADE_ACTIONS,
    AccountBalance,
    Break,
    BreakType,
    Flow,
    LedgerMt5Movement,
    LedgerPspMovement,
    Mt5Deal,
    Period,
    PspRow,
    Result,
    Side,
    Sides,
)

A = TypeVar("A")
B = TypeVar("B")
Mt5Key = tuple[int, str, bool]  # login, reference, money onto the account
PspKey = tuple[str, str, Flow]  # provider, reference, flow


def _text(units: int, currency: str) -> str:
    return f"{Money.from_minor_units(units, currency).amount} {currency}"


def mt5_key_text(key: Mt5Key) -> str:
    login, reference, inward = key
    return f"mt5:{login}:{reference}:{'in' if inward else 'out'}"


def psp_key_text(key: PspKey) -> str:
    provider, reference, flow = key
    return f"psp:{provider}:{reference}:{flow.value}"


class _Findings:
    def __init__(self) -> None:
        self.breaks: list[Break] = []
        self.cleared: set[str] = set()
        self.matched = 0

    def add(self, found: Break) -> None:
        self.breaks.append(found)

    def pair_clean(self, key: str, first_in_day: bool, second_in_day: bool) -> None:
        self.matched += 1
        if first_in_day != second_in_day:
            self.cleared.add(key)


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (back on after it, if it was on).

    A day is a million tuples: each pass of the collector over them finds nothing to free (the
    sides hold no cycles), but its passes, set off by the allocations alone, doubled the time of
    the matching. Reference counting still frees everything as usual; a cycle made meanwhile
    (anywhere in the process) waits for the next collection after the block."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def reconcile(period: Period, sides: Sides) -> Result:
    """Every break of the day, in a fixed order (type, key, deal): the same whatever the order
    of the input. A clean day gives none."""
    findings = _Findings()
    with gc_paused():
        _match_mt5(period, sides.mt5, sides.ledger_mt5, findings)
        _match_psp(period, sides.ledger_psp, sides.psp, findings)
    _check_balances(sides.balances, findings)
    breaks = sorted(findings.breaks, key=Break.sort_key)
    return Result(breaks, sorted(findings.cleared), findings.matched)


# --- MT5 <-> ledger -------------------------------------------------------------------------


def _match_mt5(
    period: Period,
    deals: Iterable[Mt5Deal],
    movements: Iterable[LedgerMt5Movement],
    findings: _Findings,
) -> None:
    by_key: dict[Mt5Key, list[Mt5Deal]] = defaultdict(list)
    loose: list[Mt5Deal] = []
    for deal in deals:
        if deal.action in TRADE_ACTIONS:
            continue
        # reference_of, inlined: it runs once per deal of the day
        purpose, _, reference = deal.comment.strip().partition(" ")
        if purpose in BROKERFLOW_PURPOSES and reference and " " not in reference:
            by_key[(deal.login, reference, deal.amount_minor > 0)].append(deal)
        else:
            loose.append(deal)
    ledger: dict[Mt5Key, list[LedgerMt5Movement]] = defaultdict(list)
    for movement in movements:
        ledger[(movement.login, movement.reference, movement.amount_minor > 0)].append(movement)

    unmatched: list[tuple[Mt5Key, LedgerMt5Movement]] = []
    start, end = period.start, period.end
    # The usual key, one movement and one deal that agree, is settled in this first loop (kept
    # short: it runs for nearly every payment of the day); any other key in the second.
    others: list[tuple[Mt5Key, list[LedgerMt5Movement], list[Mt5Deal]]] = []
    matched = 0
    take = by_key.pop
    for key, books in ledger.items():
        found = take(key, None)
        if found is None:
            others.append((key, books, []))
            continue
        if len(books) == 1 and len(found) == 1:
            movement, deal = books[0], found[0]
            if movement.amount_minor == deal.amount_minor and movement.currency == deal.currency:
                books_in_day, deal_in_day = start <= movement.time < end, start <= deal.time < end
                if books_in_day or deal_in_day:
                    matched += 1
                    if books_in_day != deal_in_day:
                        findings.cleared.add(mt5_key_text(key))
                continue
        others.append((key, books, found))
    findings.matched += matched
    others.extend((key, [], found) for key, found in by_key.items())
    for key, books, found in others:
        if len(books) == 1 and len(found) == 1:  # one pair that does not agree
            _compare_mt5(period, key, books[0], found[0], findings)
            continue
        books.sort(key=lambda m: (m.time, m.key))
        found.sort(key=lambda d: (d.time, d.deal))
        pairs, left_books, left_found = _pair(
            books, found, lambda m, d: m.amount_minor == d.amount_minor and m.currency == d.currency
        )
        for movement, deal in pairs:
            _compare_mt5(period, key, movement, deal, findings)
        for movement in left_books:
            if found:
                _report_duplicate_movement(period, key, movement, findings)
            else:
                unmatched.append((key, movement))
        for deal in left_found:
            if not period.contains(deal.time):
                continue
            if books:
                findings.add(_mt5_break(BreakType.DUPLICATE, key, deal, f":deal:{deal.deal}"))
            elif period.near_cut_off(deal.time):
                findings.add(_mt5_break(BreakType.CUT_OFF_TIMING, key, deal))
            else:
                findings.add(_mt5_break(BreakType.MISSING_IN_LEDGER, key, deal))

    # A ledger movement without its deal: a deal without BrokerFlow's comment on the same login,
    # same amount, within the match window, is its deal (the comment was typed by hand).
    spare: dict[tuple[int, int, str], list[Mt5Deal]] = defaultdict(list)
    for deal in sorted(loose, key=lambda d: (d.time, d.deal)):
        spare[(deal.login, deal.amount_minor, deal.currency)].append(deal)
    unmatched.sort(key=lambda item: (item[1].time, item[1].key))
    for key, movement in unmatched:
        candidates = spare.get((movement.login, movement.amount_minor, movement.currency), [])
        close = [d for d in candidates if abs(d.time - movement.time) <= period.match_window]
        if close:
            deal = min(close, key=lambda d: (abs(d.time - movement.time), d.deal))
            candidates.remove(deal)
            if period.contains(movement.time) or period.contains(deal.time):
                findings.pair_clean(
                    mt5_key_text(key), period.contains(movement.time), period.contains(deal.time)
                )
            continue
        if not period.contains(movement.time):
            continue
        kind = (
            BreakType.CUT_OFF_TIMING
            if period.near_cut_off(movement.time)
            else BreakType.MISSING_IN_MT5
        )
        findings.add(
            Break(
                kind,
                mt5_key_text(key),
                movement.amount_minor,
                movement.currency,
                found_in=(Side.LEDGER,),
                missing_from=(Side.MT5,),
                reference=movement.reference,
                login=movement.login,
                detail=f"ledger entry {movement.key} has no MT5 balance deal",
            )
        )
    for left in spare.values():
        for deal in left:
            if period.contains(deal.time):
                findings.add(
                    Break(
                        BreakType.MANUAL_ADJUSTMENT,
                        f"mt5-deal:{deal.login}:{deal.deal}",
                        deal.amount_minor,
                        deal.currency,
                        found_in=(Side.MT5,),
                        missing_from=(Side.LEDGER,),
                        deal=deal.deal,
                        login=deal.login,
                        detail=f"balance deal (action {deal.action}) without a BrokerFlow record;"
                        f" comment {deal.comment!r}",
                    )
                )


def _compare_mt5(
    period: Period, key: Mt5Key, movement: LedgerMt5Movement, deal: Mt5Deal, findings: _Findings
) -> None:
    books_in_day = period.contains(movement.time)
    deal_in_day = period.contains(deal.time)
    if not (books_in_day or deal_in_day):
        return
    if movement.currency != deal.currency:
        kind = BreakType.FX_DIFFERENCE
    elif movement.amount_minor != deal.amount_minor:
        kind = BreakType.AMOUNT_MISMATCH
    else:
        findings.pair_clean(mt5_key_text(key), books_in_day, deal_in_day)
        return
    same = movement.currency == deal.currency
    findings.add(
        Break(
            kind,
            mt5_key_text(key),
            deal.amount_minor - movement.amount_minor if same else deal.amount_minor,
            deal.currency,
            found_in=(Side.MT5, Side.LEDGER),
            reference=movement.reference,
            deal=deal.deal,
            login=deal.login,
            expected_minor=movement.amount_minor,
            actual_minor=deal.amount_minor,
            expected_currency=None if same else movement.currency,
            detail=f"ledger entry {movement.key}:"
            f" {_text(movement.amount_minor, movement.currency)};"
            f" MT5 deal {deal.deal}: {_text(deal.amount_minor, deal.currency)}",
        )
    )


def _mt5_break(kind: BreakType, key: Mt5Key, deal: Mt5Deal, suffix: str = "") -> Break:
    details = {
        BreakType.DUPLICATE: "a second MT5 deal for one ledger movement",
        BreakType.CUT_OFF_TIMING: "MT5 deal at the cut-off; the ledger's is expected the other"
        " side of it",
        BreakType.MISSING_IN_LEDGER: "MT5 deal with BrokerFlow's comment but no ledger entry",
    }
    return Break(
        kind,
        mt5_key_text(key) + suffix,
        deal.amount_minor,
        deal.currency,
        found_in=(Side.MT5,),
        missing_from=() if kind is BreakType.DUPLICATE else (Side.LEDGER,),
        reference=key[1],
        deal=deal.deal,
        login=deal.login,
        detail=f"{details[kind]}; comment {deal.comment!r}",
    )


def _report_duplicate_movement(
    period: Period, key: Mt5Key, movement: LedgerMt5Movement, findings: _Findings
) -> None:
    if period.contains(movement.time):
        findings.add(
            Break(
                BreakType.DUPLICATE,
                f"{mt5_key_text(key)}:entry:{movement.key}",
                movement.amount_minor,
                movement.currency,
                found_in=(Side.LEDGER,),
                reference=movement.reference,
                login=movement.login,
                detail=f"a second ledger movement ({movement.key}) for one MT5 deal",
            )
        )


# --- processors <-> ledger ------------------------------------------------------------------


def _match_psp(
    period: Period,
    movements: Iterable[LedgerPspMovement],
    rows: Iterable[PspRow],
    findings: _Findings,
) -> None:
    ledger: dict[PspKey, list[LedgerPspMovement]] = defaultdict(list)
    for movement in movements:
        ledger[(movement.provider, movement.reference, movement.flow)].append(movement)
    reported: dict[PspKey, list[PspRow]] = defaultdict(list)
    for row in rows:
        reported[(row.provider, row.reference, row.flow)].append(row)
    start, end, day = period.start, period.end, period.day
    others: list[tuple[PspKey, list[LedgerPspMovement], list[PspRow]]] = []
    matched = 0
    take = reported.pop
    for key, books in ledger.items():  # the usual key first, as in _match_mt5
        found = take(key, None)
        if found is None:
            others.append((key, books, []))
            continue
        if len(books) == 1 and len(found) == 1:
            movement, row = books[0], found[0]
            if (
                movement.amount_minor == row.gross_minor
                and movement.currency == row.currency
                and row.net_minor == row.gross_minor - row.fee_minor
                and (movement.fee_minor is None or movement.fee_minor == row.fee_minor)
            ):
                books_in_day, row_in_day = start <= movement.time < end, row.day == day
                if books_in_day or row_in_day:
                    matched += 1
                    if books_in_day != row_in_day:
                        findings.cleared.add(psp_key_text(key))
                continue
        others.append((key, books, found))
    findings.matched += matched
    others.extend((key, [], found) for key, found in reported.items())
    for key, books, found in others:
        if len(books) == 1 and len(found) == 1:  # one pair that does not agree
            _compare_psp(period, key, books[0], found[0], findings)
            continue
        books.sort(key=lambda m: (m.time, m.key))
        found.sort(key=lambda r: (r.day, r.provider_ref, r.gross_minor))
        pairs, left_books, left_found = _pair(
            books, found, lambda m, r: m.amount_minor == r.gross_minor and m.currency == r.currency
        )
        for movement, row in pairs:
            _compare_psp(period, key, movement, row, findings)
        for movement in left_books:
            if not period.contains(movement.time):
                continue
            if found:
                kind = BreakType.DUPLICATE
            elif period.near_cut_off(movement.time):
                kind = BreakType.CUT_OFF_TIMING
            else:
                kind = BreakType.MISSING_AT_PSP
            duplicate = kind is BreakType.DUPLICATE
            findings.add(
                _psp_break(
                    kind,
                    psp_key_text(key) + (f":entry:{movement.key}" if duplicate else ""),
                    (movement.amount_minor, movement.currency, movement.reference, key[0]),
                    Side.LEDGER,
                    Side.PSP,
                    f"ledger entry {movement.key}"
                    + (
                        " is a second movement for one settlement row"
                        if duplicate
                        else f" is not in {movement.provider}'s settlement report"
                    ),
                )
            )
        for row in left_found:
            if row.day != period.day:
                continue
            if books:
                kind = BreakType.DUPLICATE
            elif row.flow is Flow.CHARGEBACK:
                kind = BreakType.CHARGEBACK
            else:
                kind = BreakType.MISSING_IN_LEDGER
            duplicate = kind is BreakType.DUPLICATE
            findings.add(
                _psp_break(
                    kind,
                    psp_key_text(key) + (f":row:{row.provider_ref}" if duplicate else ""),
                    (row.gross_minor, row.currency, row.reference, key[0]),
                    Side.PSP,
                    Side.LEDGER,
                    f"{row.provider} {row.flow.value} {row.provider_ref}"
                    + (" reported again" if duplicate else " not booked in the ledger"),
                )
            )


def _psp_break(
    kind: BreakType,
    key: str,
    item: tuple[int, str, str, str],  # amount, currency, reference, provider
    found: Side,
    other: Side,
    detail: str,
) -> Break:
    """A processor-side break of an item found on one side only (or twice)."""
    amount, currency, reference, provider = item
    return Break(
        kind,
        key,
        amount,
        currency,
        found_in=(found,),
        missing_from=() if kind is BreakType.DUPLICATE else (other,),
        reference=reference,
        provider=provider,
        detail=detail,
    )


def _compare_psp(
    period: Period, key: PspKey, movement: LedgerPspMovement, row: PspRow, findings: _Findings
) -> None:
    books_in_day = period.contains(movement.time)
    row_in_day = row.day == period.day
    if not (books_in_day or row_in_day):
        return
    expected, actual = movement.amount_minor, row.gross_minor
    if movement.currency != row.currency:
        kind, amount, detail = (
            BreakType.FX_DIFFERENCE,
            actual,
            "the processor settled in another currency",
        )
    elif expected == actual:
        net_gap = row.gross_minor - row.fee_minor - row.net_minor
        fee_gap = row.fee_minor - movement.fee_minor if movement.fee_minor is not None else 0
        if net_gap == 0 and fee_gap == 0:
            findings.pair_clean(psp_key_text(key), books_in_day, row_in_day)
            return
        kind = BreakType.FEE_DIFFERENCE
        if fee_gap and movement.fee_minor is not None:
            amount, expected, actual = fee_gap, movement.fee_minor, row.fee_minor
            detail = (
                f"fee {_text(row.fee_minor, row.currency)};"
                f" the ledger expects {_text(movement.fee_minor, row.currency)}"
            )
        else:
            amount, expected, actual = net_gap, row.gross_minor - row.fee_minor, row.net_minor
            detail = (
                f"net {_text(row.net_minor, row.currency)} is not gross"
                f" {_text(row.gross_minor, row.currency)}"
                f" less fee {_text(row.fee_minor, row.currency)}"
            )
    elif expected == row.net_minor and row.fee_minor != 0:
        kind, amount = BreakType.FEE_DIFFERENCE, row.fee_minor
        detail = "the ledger booked the net amount: the processor's fee is not booked"
    else:
        kind, amount = BreakType.AMOUNT_MISMATCH, actual - expected
        detail = "gross settled differs from the amount booked"
    findings.add(
        Break(
            kind,
            psp_key_text(key),
            amount,
            row.currency,
            found_in=(Side.LEDGER, Side.PSP),
            reference=row.reference,
            provider=row.provider,
            expected_minor=expected,
            actual_minor=actual,
            expected_currency=movement.currency if movement.currency != row.currency else None,
            detail=f"{row.provider} {row.flow.value} {row.provider_ref}, ledger entry"
            f" {movement.key}: {detail}",
        )
    )


# --- balances -------------------------------------------------------------------------------


def _check_balances(balances: Iterable[AccountBalance], findings: _Findings) -> None:
    for balance in balances:
        funded = balance.mt5_minor - balance.trading_minor
        if funded != balance.ledger_minor:
            findings.add(
                Break(
                    BreakType.BALANCE_MISMATCH,
                    f"balance:{balance.login}",
                    funded - balance.ledger_minor,
                    balance.currency,
                    found_in=(Side.MT5, Side.LEDGER),
                    login=balance.login,
                    expected_minor=balance.ledger_minor,
                    actual_minor=funded,
                    detail=f"MT5 balance {_text(balance.mt5_minor, balance.currency)} less trading"
                    f" {_text(balance.trading_minor, balance.currency)} vs the ledger's mirror"
                    f" {_text(balance.ledger_minor, balance.currency)}",
                )
            )


# --- pairing --------------------------------------------------------------------------------


def _pair(
    first: list[A], second: list[B], same: Callable[[A, B], bool]
) -> tuple[list[tuple[A, B]], list[A], list[B]]:
    """Pairs equal items first (in order), then what is left in order; and the leftovers."""
    used = [False] * len(second)
    pairs: list[tuple[A, B]] = []
    rest: list[A] = []
    for item in first:
        for n, other in enumerate(second):
            if not used[n] and same(item, other):
                used[n] = True
                pairs.append((item, other))
                break
        else:
            rest.append(item)
    others = [other for n, other in enumerate(second) if not used[n]]
    matched = min(len(rest), len(others))
    pairs.extend(zip(rest[:matched], others[:matched], strict=True))
    return pairs, rest[matched:], others[matched:]
