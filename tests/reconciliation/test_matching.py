"""domain.reconciliation: every break type injected on purpose into a hand-built day is found
and classified; a clean day has none; the input's order changes nothing."""

from __future__ import annotations

import gc
import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ledger import JournalEntry
from domain.money import Money
from domain.reconciliation.ledger import ledger_sides
from domain.reconciliation.matching import gc_paused, reconcile
from domain.reconciliation.records import (
    BreakType,
    Flow,
    LedgerMt5Movement,
    LedgerPspMovement,
    Mt5Deal,
    PspRow,
    Side,
    Sides,
    reference_of,
)
from domain.wallets import capture_hold
from tests.reconciliation.day import DAY, FAULTS, PERIOD, START, Day, Payment, consistent

T = TypeVar("T")


def payments() -> list[Payment]:
    return [
        Payment(1, 5000001, 10_000, "USD", True, 60),
        Payment(2, 5000001, 2_500, "USD", False, 120),
        Payment(3, 5000002, 50_000, "EUR", True, 600),
        Payment(4, 5000003, 75_000, "JPY", True, 700),
        Payment(5, 5000002, 7_700, "EUR", False, 900),
    ]


def shuffled(sides: Sides, seed: int) -> Sides:
    rng = random.Random(seed)

    def mixed(part: Sequence[T]) -> list[T]:
        items = list(part)
        rng.shuffle(items)
        return items

    return Sides(
        mixed(sides.mt5),
        mixed(sides.ledger_mt5),
        mixed(sides.ledger_psp),
        mixed(sides.psp),
        mixed(sides.balances),
    )


class TestCleanDay:
    def test_a_consistent_day_has_no_breaks(self) -> None:
        result = reconcile(PERIOD, consistent(payments()).sides())
        assert result.breaks == []
        assert result.matched == 10
        assert result.cleared == []

    def test_an_empty_day_has_no_breaks(self) -> None:
        assert reconcile(PERIOD, Sides([], [], [], [])).breaks == []

    def test_trades_are_not_balance_operations(self) -> None:
        day = consistent(payments())
        day.deals.append(Mt5Deal(1, 5000001, START + timedelta(hours=3), 0, 0, "USD", ""))
        assert reconcile(PERIOD, day.sides()).breaks == []


class TestEachFault:
    @pytest.mark.parametrize("name", sorted(FAULTS))
    def test_one_fault_gives_one_break_of_its_type(self, name: str) -> None:
        fault, kind, deposit_only = FAULTS[name]
        day = consistent(payments())
        target = payments()[0 if deposit_only else 1]
        fault(day, target)
        breaks = reconcile(PERIOD, day.sides()).breaks
        assert [b.type for b in breaks] == [kind]
        if kind is not BreakType.BALANCE_MISMATCH:
            assert breaks[0].reference in (target.reference, None)
        if kind is not BreakType.MANUAL_ADJUSTMENT and kind is not BreakType.BALANCE_MISMATCH:
            assert breaks[0].reference == target.reference

    def test_sides_named(self) -> None:
        day = consistent(payments())
        FAULTS["drop_deal"][0](day, payments()[2])
        (found,) = reconcile(PERIOD, day.sides()).breaks
        assert found.found_in == (Side.LEDGER,) and found.missing_from == (Side.MT5,)
        assert (found.amount_minor, found.currency, found.login) == (50_000, "EUR", 5000002)
        assert found.key == f"mt5:5000002:{payments()[2].reference}:in"

    def test_duplicate_names_the_second_deal(self) -> None:
        day = consistent(payments())
        FAULTS["duplicate_deal"][0](day, payments()[1])
        (found,) = reconcile(PERIOD, day.sides()).breaks
        assert found.deal == 900_002 and found.amount_minor == -2_500

    def test_ledger_booking_net_is_a_fee_difference(self) -> None:
        day = consistent(payments())
        n = next(n for n, m in enumerate(day.ledger_psp) if m.reference == payments()[0].reference)
        row = next(r for r in day.psp if r.reference == payments()[0].reference)
        day.ledger_psp[n] = day.ledger_psp[n]._replace(amount_minor=row.net_minor, fee_minor=None)
        (found,) = reconcile(PERIOD, day.sides()).breaks
        assert found.type is BreakType.FEE_DIFFERENCE and found.amount_minor == row.fee_minor

    def test_inconsistent_report_row_is_a_fee_difference(self) -> None:
        day = consistent(payments())
        n = next(n for n, r in enumerate(day.psp) if r.reference == payments()[3].reference)
        day.psp[n] = day.psp[n]._replace(net_minor=day.psp[n].net_minor - 1)
        (found,) = reconcile(PERIOD, day.sides()).breaks
        assert found.type is BreakType.FEE_DIFFERENCE

    def test_a_deal_in_the_window_after_midnight_is_timing(self) -> None:
        day = consistent(payments())
        day.deals.append(
            Mt5Deal(1, 5000009, PERIOD.start + timedelta(seconds=20), 2, 500, "USD", "dep BFX")
        )
        (found,) = reconcile(PERIOD, day.sides()).breaks
        assert found.type is BreakType.CUT_OFF_TIMING
        assert found.missing_from == (Side.LEDGER,)


class TestAcrossTheCutOff:
    def test_the_next_run_clears_the_timing_break(self) -> None:
        """Yesterday's ledger movement at 23:58 pairs with today's settlement row: no break,
        and its key is in `cleared` (the case closes itself)."""
        ref = "BFAAAAAAAAAAAAAAAAAAAA"
        movement = LedgerPspMovement(
            f"{ref}:received",
            ref,
            "cardco",
            Flow.COLLECTION,
            PERIOD.start - timedelta(minutes=2),
            1_000,
            "USD",
            None,
        )
        row = PspRow("cardco", "pi_1", ref, Flow.COLLECTION, DAY, 1_000, 0, 1_000, "USD")
        result = reconcile(PERIOD, Sides([], [], [movement], [row]))
        assert result.breaks == []
        assert result.cleared == [f"psp:cardco:{ref}:collection"]
        yesterday = PERIOD._replace(
            day=DAY - timedelta(days=1),
            start=PERIOD.start - timedelta(days=1),
            end=PERIOD.start,
        )
        (timing,) = reconcile(yesterday, Sides([], [], [movement], [])).breaks
        assert timing.type is BreakType.CUT_OFF_TIMING and timing.key == result.cleared[0]

    def test_items_of_other_days_are_not_reported(self) -> None:
        late = Mt5Deal(1, 5000001, PERIOD.end + timedelta(hours=2), 2, 100, "USD", "dep BFQ")
        early = LedgerMt5Movement(
            "BFR:to-mt5", "BFR", 5000001, PERIOD.start - timedelta(hours=3), 100, "USD"
        )
        assert reconcile(PERIOD, Sides([late], [early], [], [])).breaks == []

    def test_a_hand_typed_comment_matches_within_the_window(self) -> None:
        movement = LedgerMt5Movement(
            "BFS:to-mt5", "BFS", 5000001, START + timedelta(hours=5), 100, "USD"
        )
        deal = Mt5Deal(1, 5000001, START + timedelta(hours=5, minutes=20), 2, 100, "USD", "depo")
        assert reconcile(PERIOD, Sides([deal], [movement], [], [])).breaks == []
        far = deal._replace(time=START + timedelta(hours=7))
        kinds = {b.type for b in reconcile(PERIOD, Sides([far], [movement], [], [])).breaks}
        assert kinds == {BreakType.MISSING_IN_MT5, BreakType.MANUAL_ADJUSTMENT}


# --- properties ------------------------------------------------------------------------------

CURRENCIES = ("USD", "EUR", "JPY", "GBP")


@st.composite
def days(draw: st.DrawFn) -> list[Payment]:
    count = draw(st.integers(min_value=1, max_value=12))
    return [
        Payment(
            n + 1,
            5000000 + draw(st.integers(min_value=1, max_value=4)),
            draw(st.integers(min_value=100, max_value=10**7)),
            CURRENCIES[(n * 7 + 1) % 2],  # one currency per login is not needed here
            draw(st.booleans()),
            draw(st.integers(min_value=30, max_value=1380)),
        )
        for n in range(count)
    ]


def _currency_per_login(items: list[Payment]) -> list[Payment]:
    return [
        Payment(p.n, p.login, p.amount_minor, CURRENCIES[p.login % 4], p.deposit, p.minute)
        for p in items
    ]


PROPERTY = settings(max_examples=60, deadline=None)


@PROPERTY
@given(days())
def test_consistent_days_have_no_breaks(items: list[Payment]) -> None:
    result = reconcile(PERIOD, consistent(_currency_per_login(items)).sides())
    assert result.breaks == []
    assert result.matched == 2 * len(items)


@PROPERTY
@given(days(), st.sampled_from(sorted(FAULTS)), st.data())
def test_one_fault_one_break(items: list[Payment], name: str, data: st.DataObject) -> None:
    items = _currency_per_login(items)
    fault, kind, deposit_only = FAULTS[name]
    candidates = [p for p in items if p.deposit or not deposit_only]
    if not candidates:
        candidates = [Payment(99, 5000001, 1_000, CURRENCIES[1], True, 500)]
        items = [*items, *candidates]
    day = consistent(items)
    fault(day, data.draw(st.sampled_from(candidates)))
    assert [b.type for b in reconcile(PERIOD, day.sides()).breaks] == [kind]


@PROPERTY
@given(days(), st.lists(st.sampled_from(sorted(FAULTS)), max_size=4), st.integers(0, 2**32))
def test_input_order_changes_nothing(items: list[Payment], names: list[str], seed: int) -> None:
    items = _currency_per_login(items)
    day: Day = consistent(items)
    rng = random.Random(seed)
    for name in names:
        fault, _, deposit_only = FAULTS[name]
        targets = [p for p in items if p.deposit or not deposit_only]
        if targets:
            try:
                fault(day, rng.choice(targets))
            except StopIteration:  # the fault's item was already dropped by another
                pass
    first = reconcile(PERIOD, day.sides())
    again = reconcile(PERIOD, shuffled(day.sides(), seed))
    assert again == first


PAYOUT = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")


def test_the_ledger_side_from_postings() -> None:
    at = START + timedelta(hours=1)
    mt5, psp = ledger_sides(
        [
            # the mirror credited for money onto MT5 (domain.funds.into_mt5), debited back
            ("BF1:to-mt5", at, "mt5:demo-5000001:USD", -100, "USD"),
            ("BF1:to-mt5:reversal", at, "mt5:demo-5000001:USD", 100, "USD"),
            ("BF2:to-mt5", at, "mt5:other-5000002:USD", -100, "USD"),  # another server
            ("BF1:received", at, "psp:cardco:USD", 100, "USD"),
            ("BF3:paid-out", at, "psp:bankco:EUR", -50, "EUR"),
            ("BF4:received:reversal", at, "psp:cardco:USD", -100, "USD"),
            ("BF1:transit", at, "hold:c:USD", 100, "USD"),  # neither side
            (f"ib-payout:{PAYOUT}", at, "mt5:demo-5000009:USD", -700, "USD"),
        ],
        "demo",
    )
    assert [(m.reference, m.login, m.amount_minor) for m in mt5] == [
        ("BF1", 5000001, 100),
        ("BF1", 5000001, -100),
        (PAYOUT.hex[:24], 5000009, 700),  # as mt5_payout_comment writes it
    ]
    assert [(m.reference, m.provider, m.flow) for m in psp] == [
        ("BF1", "cardco", Flow.COLLECTION),
        ("BF3", "bankco", Flow.PAYOUT),
        ("BF4", "cardco", Flow.REFUND),
    ]


def booked_postings(entry: JournalEntry, at: datetime) -> list[tuple[str, datetime, str, int, str]]:
    """An entry's postings as the ledger's side reads them (key, booked at, code, minor units,
    currency)."""
    return [
        (entry.idempotency_key, at, p.account, p.amount.to_minor_units(), p.amount.currency)
        for p in entry.postings
    ]


@pytest.mark.parametrize(
    ("reported_fee", "found"),
    [("1.00", []), ("1.50", [(BreakType.FEE_DIFFERENCE, 50, 100, 150)])],
)
def test_a_payout_whose_fee_the_ledger_booked_is_clean(
    reported_fee: str, found: list[tuple[BreakType, int, int, int]]
) -> None:
    """`capture_hold(..., fee=…)` pays amount + fee out of the clearing account and books the
    fee as an expense (docs/ledger.md): the processor's row (gross -80, its fee, net = gross -
    fee) agrees with it, and a fee other than the one booked is the difference."""
    at = START + timedelta(hours=3)
    ref = "BF" + "9" * 20
    paid = capture_hold(
        f"{ref}:paid-out", "c", "bankco", Money.of("80.00", "USD"), Money.of("1.00", "USD")
    )
    _, psp = ledger_sides(booked_postings(paid, at), "demo")
    assert [(m.amount_minor, m.fee_minor, m.flow) for m in psp] == [(-8000, 100, Flow.PAYOUT)]
    fee = Money.of(reported_fee, "USD").to_minor_units()
    row = PspRow("bankco", "po_1", ref, Flow.PAYOUT, DAY, -8000, fee, -8000 - fee, "USD")
    result = reconcile(PERIOD, Sides([], [], psp, [row]))
    assert [(b.type, b.amount_minor, b.expected_minor, b.actual_minor) for b in result.breaks] == (
        found
    )
    assert result.matched == (0 if found else 1)


@pytest.mark.parametrize(
    ("comment", "reference"),
    [("dep BF1", "BF1"), ("ibp abc", "abc"), ("goodwill", None), ("dep", None), ("x BF1", None)],
)
def test_reference_of_a_comment(comment: str, reference: str | None) -> None:
    assert reference_of(comment) == reference


def test_the_collector_paused_for_a_day_comes_back_as_it_was() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: the outer one turns it back on
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # off before, off after
    finally:
        gc.enable()
    with pytest.raises(ValueError), gc_paused():
        raise ValueError
    assert gc.isenabled()
