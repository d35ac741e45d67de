from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel


class LedgerAccountView(BaseModel):
    code: str
    kind: str
    currency: str
    # Debit positive: assets and expenses show positive, liabilities (wallets) negative.
    balance: str


class LedgerAccountPage(BaseModel):
    items: list[LedgerAccountView]
    limit: int
    offset: int


class PostingView(BaseModel):
    account: str
    amount: str  # signed: positive debits the account, negative credits it
    currency: str


class JournalEntryView(BaseModel):
    id: UUID
    idempotency_key: str
    description: str
    reverses_id: UUID | None
    booked_at: datetime
    # What this entry did to the account the entries were asked for.
    amount_on_account: str
    postings: list[PostingView]


class JournalEntryPage(BaseModel):
    account: LedgerAccountView
    items: list[JournalEntryView]
    limit: int
    offset: int
