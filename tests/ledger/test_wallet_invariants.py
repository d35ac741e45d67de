"""Any sequence of deposits, holds, releases, payouts and conversions keeps the books balanced,
no wallet or hold below zero, and FX spread revenue never negative."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ledger import JournalEntry, balances
from domain.money import Money
from domain.wallets import (
    FxRate,
    InsufficientFunds,
    available,
    capture_hold,
    convert,
    credit_deposit,
    hold_account,
    place_hold,
    release_hold,
    wallet,
)

CLIENTS = ["alice", "bob"]
CURRENCIES = ["USD", "EUR"]
EURUSD = FxRate(
    base="EUR",
    quote="USD",
    bid=Decimal("1.0998"),
    ask=Decimal("1.1002"),
    as_of=datetime(2026, 11, 24, tzinfo=UTC),
)
cents = st.integers(min_value=1, max_value=5_000_000).map(lambda c: Decimal(c) / 100)
operation = st.one_of(
    st.tuples(st.just("deposit"), st.sampled_from(CLIENTS), st.sampled_from(CURRENCIES), cents),
    st.tuples(st.just("hold"), st.sampled_from(CLIENTS), st.sampled_from(CURRENCIES), cents),
    st.tuples(st.just("release"), st.integers(0, 10)),
    st.tuples(st.just("capture"), st.integers(0, 10), st.integers(0, 500)),
    st.tuples(
        st.just("convert"),
        st.sampled_from(CLIENTS),
        st.sampled_from(CURRENCIES),
        cents,
        st.integers(0, 300),
    ),
)


class Books:
    def __init__(self) -> None:
        self.entries: list[JournalEntry] = []
        self.open_holds: list[tuple[str, Money]] = []

    def book(self, entry: JournalEntry) -> None:
        self.entries.append(entry)

    def ledger(self, account: str, currency: str) -> Money:
        return Money(
            amount=balances(self.entries).get((account, currency), Decimal(0)), currency=currency
        )

    def key(self) -> str:
        return f"k{len(self.entries)}"


def run(program: list[tuple[object, ...]]) -> Books:
    books = Books()
    for step in program:
        kind = step[0]
        if kind == "deposit":
            _, client, ccy, amount = step
            books.book(
                credit_deposit(
                    books.key(), str(client), "cardco", Money(amount=amount, currency=str(ccy))
                )
            )
        elif kind == "hold":
            _, client, ccy, amount = step
            money = Money(amount=amount, currency=str(ccy))
            try:
                entry = place_hold(
                    books.key(),
                    str(client),
                    money,
                    available(books.ledger(wallet(str(client), str(ccy)), str(ccy))),
                )
            except InsufficientFunds:
                continue
            books.book(entry)
            books.open_holds.append((str(client), money))
        elif kind in ("release", "capture") and books.open_holds:
            client, money = books.open_holds.pop(int(str(step[1])) % len(books.open_holds))
            if kind == "release":
                books.book(release_hold(books.key(), client, money))
            else:
                fee = Money(amount=Decimal(int(str(step[2]))) / 100, currency=money.currency)
                books.book(
                    capture_hold(books.key(), client, "cardco", money, fee if fee.amount else None)
                )
        elif kind == "convert":
            _, client, ccy, amount, spread = step
            have = available(books.ledger(wallet(str(client), str(ccy)), str(ccy)))
            if have.amount <= 0:
                continue
            sell = Money(amount=min(Decimal(str(amount)), have.amount), currency=str(ccy))
            into = "USD" if ccy == "EUR" else "EUR"
            try:
                entry, _ = convert(books.key(), str(client), sell, into, EURUSD, int(str(spread)))
            except Exception as exc:  # too small to convert is a refusal, not a bug
                assert "too small" in str(exc)
                continue
            books.book(entry)
    return books


@settings(max_examples=200, deadline=None)
@given(st.lists(operation, min_size=20, max_size=80))
def test_books_stay_balanced_and_nobody_goes_below_zero(program: list[tuple[object, ...]]) -> None:
    books = run(program)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for (account, currency), value in balances(books.entries).items():
        totals[currency] += value
        if account.startswith(("wallet:", "hold:")):
            assert value <= 0, f"{account} went below zero"
        if account.startswith("revenue:"):
            assert value <= 0, "FX spread revenue is a credit"
    assert all(total == 0 for total in totals.values())
    for client, money in books.open_holds:
        assert (
            -books.ledger(hold_account(client, money.currency), money.currency).amount
            >= money.amount
        )


def test_a_conversion_pays_mid_less_the_spread_and_books_it() -> None:
    entry, received = convert(
        "fx-1", "alice", Money(amount=Decimal("100.00"), currency="EUR"), "USD", EURUSD, 50
    )
    assert received == Money(amount=Decimal("109.45"), currency="USD")  # 100 x 1.1000 x 0.995
    revenue = [p for p in entry.postings if p.account.startswith("revenue:")]
    assert [p.amount.amount for p in revenue] == [Decimal("-0.55")]


def test_a_hold_beyond_the_wallet_is_refused() -> None:
    with pytest.raises(InsufficientFunds):
        place_hold(
            "h",
            "bob",
            Money(amount=Decimal("10.01"), currency="USD"),
            Money(amount=Decimal("10"), currency="USD"),
        )
