"""Double-entry invariants of the domain ledger, for any sequence of entries and reversals."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.errors import InvalidInput
from domain.ledger import (
    AccountKind,
    JournalEntry,
    Posting,
    account_code,
    balances,
    reversal,
    transfer,
)
from domain.money import Money

ACCOUNTS = [
    account_code(AccountKind.CLIENT_WALLET, "c1", "{ccy}"),
    account_code(AccountKind.MT5_MIRROR, "demo:5000001", "{ccy}"),
    account_code(AccountKind.PSP_CLEARING, "cardco", "{ccy}"),
    account_code(AccountKind.FEES, "cardco", "{ccy}"),
]
amounts = st.integers(min_value=1, max_value=10_000_000).map(lambda cents: Decimal(cents) / 100)
transfers = st.tuples(
    st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS), amounts, st.sampled_from(["USD", "EUR"])
).filter(lambda t: t[0] != t[1])


@given(st.lists(transfers, min_size=1, max_size=50), st.data())
def test_books_balance_and_reversals_cancel(
    moves: list[tuple[str, str, Decimal, str]], data: st.DataObject
) -> None:
    entries = [
        transfer(
            f"k{n}",
            "move",
            debit.format(ccy=ccy),
            credit.format(ccy=ccy),
            Money(amount=amount, currency=ccy),
        )
        for n, (debit, credit, amount, ccy) in enumerate(moves)
    ]
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for (_, currency), value in balances(entries).items():
        totals[currency] += value
    assert all(total == 0 for total in totals.values())

    undone = data.draw(st.lists(st.sampled_from(entries), unique_by=lambda e: e.idempotency_key))
    reversals = [reversal(e, f"undo-{e.idempotency_key}", "test") for e in undone]
    expected = balances([e for e in entries if e not in undone])
    after = balances(entries + reversals)
    assert {k: v for k, v in after.items() if v} == {k: v for k, v in expected.items() if v}


def posting(account: str, amount: str, currency: str) -> Posting:
    return Posting(account=account, amount=Money(amount=Decimal(amount), currency=currency))


class TestEntriesThatMustNotExist:
    def test_unbalanced(self) -> None:
        with pytest.raises(ValidationError, match="do not balance in USD"):
            JournalEntry(
                idempotency_key="x",
                description="bad",
                postings=(
                    posting("wallet:c1:USD", "10", "USD"),
                    Posting(
                        account="psp:cardco:USD",
                        amount=Money(amount=Decimal("-9.99"), currency="USD"),
                    ),
                ),
            )

    def test_balanced_across_currencies_is_still_unbalanced(self) -> None:
        with pytest.raises(ValidationError, match="do not balance"):
            JournalEntry(
                idempotency_key="x",
                description="fx without its other legs",
                postings=(
                    posting("wallet:c1:USD", "10", "USD"),
                    posting("wallet:c1:EUR", "-10", "EUR"),
                ),
            )

    @pytest.mark.parametrize("amount", ["0", "0.001", "-0.005"])
    def test_zero_or_too_precise(self, amount: str) -> None:
        with pytest.raises(InvalidInput):
            transfer(
                "k",
                "bad",
                "wallet:c1:USD",
                "psp:cardco:USD",
                Money(amount=Decimal(amount), currency="USD"),
            )

    def test_one_legged(self) -> None:
        with pytest.raises(ValidationError, match="at least two"):
            JournalEntry(
                idempotency_key="x",
                description="bad",
                postings=(posting("wallet:c1:USD", "1", "USD"),),
            )
