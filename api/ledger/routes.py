from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import SessionDep
from api.ledger import service
from api.ledger.schemas import JournalEntryPage, LedgerAccountPage
from api.policy import FinanceReader
from api.problems import error_responses
from api.schemas import NUL, Limit, Offset
from domain.ledger import AccountKind

router = APIRouter(prefix="/v1/finance/ledger", tags=["finance"])
AccountCode = Annotated[
    str,
    Path(
        min_length=3,
        max_length=200,
        pattern=f"^[^{NUL}]+$",
        description="e.g. wallet:<client id>:EUR",
    ),
]


@router.get("/accounts")
async def list_ledger_accounts(
    _: FinanceReader,
    session: SessionDep,
    kind: AccountKind | None = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
    code_prefix: Annotated[
        str | None, Query(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> LedgerAccountPage:
    """Accounts by code with their balances (debit positive, so wallets show negative)."""
    return await service.accounts(
        session,
        kind=kind.value if kind else None,
        currency=currency,
        code_prefix=code_prefix,
        limit=limit,
        offset=offset,
    )


@router.get("/accounts/{code}/entries", responses=error_responses({404: "no such ledger account"}))
async def ledger_account_entries(
    code: AccountCode,
    _: FinanceReader,
    session: SessionDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> JournalEntryPage:
    """The journal entries touching one account, newest first, each with all its postings."""
    return await service.entries(session, code, limit, offset)
