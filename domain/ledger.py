"""Double-entry bookkeeping: journal entries whose postings balance in every currency.

A posting's amount is signed: positive debits the account, negative credits it. Amounts are
`Decimal` with no more decimals than the currency's minor unit. Entries never change; a
correction is a reversing entry that names the one it reverses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.errors import InvalidInput
from domain.money import Money


class AccountKind(StrEnum):
    """What a ledger account stands for; the code prefix and the side it normally sits on."""

    CLIENT_WALLET = "wallet"  # what the broker owes a client: a liability (credit balance)
    HOLD = "hold"  # a client's money reserved for a pending withdrawal: a liability
    MT5_MIRROR = "mt5"  # money sitting on a client's MT5 account: a liability
    PSP_CLEARING = "psp"  # money a payment processor holds for the broker: an asset
    BANK = "bank"  # the broker's own bank accounts: an asset
    FEES = "fees"  # fees paid to processors: an expense
    FX_RESULT = "fx"  # gains and losses on conversions
    REVENUE = "revenue"
    SUSPENSE = "suspense"  # money whose owner is not yet known


def account_code(kind: AccountKind, owner: str, currency: str) -> str:
    """`wallet:<client id>:EUR`, `mt5:demo:5000001:USD`, `psp:cardco:USD`, ..."""
    return f"{kind.value}:{owner}:{currency}"


class Posting(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: str = Field(min_length=3, max_length=200)
    amount: Money

    @model_validator(mode="after")
    def _exact_and_not_zero(self) -> Posting:
        if not self.amount.is_exact():
            raise ValueError(
                f"{self.amount.amount} has more decimals than {self.amount.currency} allows"
            )
        if self.amount.amount == 0:
            raise ValueError("a posting of zero moves nothing")
        return self


class JournalEntry(BaseModel):
    """One business event, booked atomically: its postings sum to zero in each currency."""

    model_config = ConfigDict(frozen=True)

    idempotency_key: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=500)
    postings: tuple[Posting, ...]
    reverses: str | None = None  # idempotency key of the entry this one reverses

    @model_validator(mode="after")
    def _balanced(self) -> JournalEntry:
        if len(self.postings) < 2:
            raise ValueError("a journal entry needs at least two postings")
        for currency, total in totals_by_currency(self.postings).items():
            if total != 0:
                raise ValueError(f"postings do not balance in {currency}: off by {total}")
        return self


def totals_by_currency(postings: Iterable[Posting]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for posting in postings:
        totals[posting.amount.currency] += posting.amount.amount
    return dict(totals)


def transfer(key: str, description: str, debit: str, credit: str, amount: Money) -> JournalEntry:
    """The simplest entry: `amount` from `credit` to `debit`."""
    negative = Money(amount=-amount.amount, currency=amount.currency)
    try:
        return JournalEntry(
            idempotency_key=key,
            description=description,
            postings=(
                Posting(account=debit, amount=amount),
                Posting(account=credit, amount=negative),
            ),
        )
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc


def reversal(entry: JournalEntry, key: str, reason: str) -> JournalEntry:
    """The entry that undoes `entry`: every posting negated, pointing back at it."""
    return JournalEntry(
        idempotency_key=key,
        description=f"reversal of {entry.idempotency_key}: {reason}",
        postings=tuple(
            Posting(
                account=p.account,
                amount=Money(amount=-p.amount.amount, currency=p.amount.currency),
            )
            for p in entry.postings
        ),
        reverses=entry.idempotency_key,
    )


def balances(entries: Iterable[JournalEntry]) -> dict[tuple[str, str], Decimal]:
    """(account, currency) -> balance, debit positive."""
    result: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for entry in entries:
        for posting in entry.postings:
            result[(posting.account, posting.amount.currency)] += posting.amount.amount
    return dict(result)
