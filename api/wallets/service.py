"""A client's wallets, read from the ledger (the books are the only balance there is)."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.schemas import decimal_text
from api.wallets.schemas import WalletView
from db.ledger import balance, locked_balance, post_entry
from db.models import LedgerAccount, PostingRow
from domain.ledger import AccountKind
from domain.money import Money
from domain.wallets import InsufficientFunds, available, hold_account, place_hold, wallet


def owner(client_id: uuid.UUID) -> str:
    """How a client is named in its ledger account codes."""
    return str(client_id)


async def available_in_wallet(session: AsyncSession, client_id: uuid.UUID, currency: str) -> Money:
    return available(await balance(session, wallet(owner(client_id), currency), currency))


async def require_available(session: AsyncSession, client_id: uuid.UUID, amount: Money) -> None:
    """Fail fast before a workflow starts; the workflow checks again under a lock."""
    wallet_has = await available_in_wallet(session, client_id, amount.currency)
    if wallet_has.amount < amount.amount:
        raise InsufficientFunds(
            f"{amount.amount} {amount.currency} requested, {wallet_has.amount} {amount.currency}"
            " available in your wallet"
        )


async def lock_available(session: AsyncSession, client_id: uuid.UUID, amount: Money) -> Money:
    """What the wallet holds, with the wallet locked until the transaction ends (a transaction
    advisory lock, as the workflow's own hold takes): a second withdrawal request of the same
    wallet waits here and then sees the first one's hold. 409 when `amount` is not covered."""
    code = wallet(owner(client_id), amount.currency)
    wallet_has = available(await locked_balance(session, code, amount.currency))
    if wallet_has.amount < amount.amount:
        raise InsufficientFunds(
            f"{amount.amount} {amount.currency} requested, {wallet_has.amount} {amount.currency}"
            " available in your wallet (money held for withdrawals in progress is not available)",
            requested=str(amount.amount),
            available=str(wallet_has.amount),
            currency=amount.currency,
        )
    return wallet_has


async def hold_at_request(
    session: AsyncSession, client_id: uuid.UUID, key: str, amount: Money, wallet_has: Money
) -> None:
    """Book the withdrawal's hold in the request's transaction, under the key the workflow's
    own hold step uses (`<reference>:hold`): the workflow then finds it booked and does not
    hold twice, and its compensation releases it. Call after `lock_available`."""
    await post_entry(session, place_hold(key, owner(client_id), amount, wallet_has))


async def wallets(session: AsyncSession, client_id: uuid.UUID) -> list[WalletView]:
    wallet_prefix = wallet(owner(client_id), "")
    hold_prefix = hold_account(owner(client_id), "")
    rows = await session.execute(
        select(
            LedgerAccount.kind,
            LedgerAccount.currency,
            func.coalesce(func.sum(PostingRow.amount_minor), 0),
        )
        .outerjoin(PostingRow, PostingRow.account_id == LedgerAccount.id)
        .where(
            or_(
                LedgerAccount.code.startswith(wallet_prefix, autoescape=True),
                LedgerAccount.code.startswith(hold_prefix, autoescape=True),
            )
        )
        .group_by(LedgerAccount.kind, LedgerAccount.currency)
    )
    # Both are liabilities: credit (negative) balances, shown positive.
    minor: dict[str, dict[str, int]] = defaultdict(lambda: {"wallet": 0, "hold": 0})
    for kind, currency, total in rows:
        minor[currency][kind] = -int(total)
    return [
        WalletView(
            currency=currency,
            available=decimal_text(sides[AccountKind.CLIENT_WALLET.value], currency),
            held=decimal_text(sides[AccountKind.HOLD.value], currency),
        )
        for currency, sides in sorted(minor.items())
    ]
