"""Ledger steps of the money sagas: each books one journal entry, exactly once per key, and
moves its payment's or transfer's status in the same transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import desc, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.movements import apply_mark, as_business_failure, open_case
from contracts import funds
from contracts.funds import (
    Booking,
    ConvertHeld,
    MarkMovement,
    Notify,
    OpenFinanceCase,
    ReserveFromWallet,
    ReverseEntry,
)
from contracts.steps import implements
from db.ledger import booked_entry, locked_balance, post_entry
from db.models import FxRateRow, Notification
from domain.errors import BackOfficeError
from domain.ledger import JournalEntry, reversal
from domain.money import Money
from domain.wallets import (
    FxRate,
    InsufficientFunds,
    available,
    convert,
    hold_account,
    place_hold,
    require_fresh,
    wallet,
)

# The check the database makes on every debit of a client wallet (migration 0007): the wallet's
# balance may not go below zero, whoever books the posting.
WALLET_GUARD = "wallet_not_below_zero"
DEFAULT_FX_RATE_MAX_AGE = timedelta(hours=1)


def wallet_overdrawn(error: DBAPIError) -> bool:
    """Whether the database refused a posting because a client wallet would go below zero."""
    diag = getattr(error.orig, "diag", None)
    return getattr(diag, "constraint_name", None) == WALLET_GUARD


@asynccontextmanager
async def refusals_as_business_failures() -> AsyncIterator[None]:
    """The books' refusals, the domain's or the database's, end the step for good: retrying
    would be refused again (and a refused withdrawal must not loop on a fault)."""
    try:
        yield
    except BackOfficeError as error:
        raise as_business_failure(error) from error
    except DBAPIError as error:
        if not wallet_overdrawn(error):
            raise
        diag = getattr(error.orig, "diag", None)
        detail = getattr(diag, "message_primary", None) or "the wallet would go below zero"
        raise as_business_failure(InsufficientFunds(detail)) from error


class LedgerSteps:
    """Database steps on the main task queue."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        fx_spread_bps: int,
        fx_rate_max_age: timedelta = DEFAULT_FX_RATE_MAX_AGE,
    ) -> None:
        self._sessions = sessions
        self._fx_spread_bps = fx_spread_bps
        self._fx_rate_max_age = fx_rate_max_age

    async def _book(
        self, entry: JournalEntry, then: MarkMovement | None, notice: Notify | None = None
    ) -> None:
        async with refusals_as_business_failures():
            async with self._sessions.begin() as session:
                await post_entry(session, entry)
                if then is not None:
                    await apply_mark(session, then)
                if notice is not None:
                    await send_notice(session, notice)

    @implements(funds.book_entry)
    async def book_entry(self, booking: Booking) -> None:
        await self._book(booking.entry, booking.then, booking.notice)

    @implements(funds.mark_movement)
    async def mark_movement(self, mark: MarkMovement) -> None:
        async with self._sessions.begin() as session:
            await apply_mark(session, mark)

    @implements(funds.open_finance_case)
    async def open_finance_case(self, request: OpenFinanceCase) -> None:
        async with self._sessions.begin() as session:
            await open_case(session, request)

    @implements(funds.reverse_entry_if_booked)
    async def reverse_entry_if_booked(self, request: ReverseEntry) -> None:
        async with self._sessions() as session:
            original = await booked_entry(session, request.key)
        if original is not None:
            await self._book(reversal(original, f"{request.key}:reversal", request.reason), None)
        if request.then is not None:
            async with self._sessions.begin() as session:
                await apply_mark(session, request.then)

    @implements(funds.reserve_from_wallet)
    async def reserve_from_wallet(self, request: ReserveFromWallet) -> None:
        client = str(request.client_id)
        async with refusals_as_business_failures():
            async with self._sessions.begin() as session:
                # A retry after the hold was booked must not check the (now lower) balance again.
                if await booked_entry(session, request.key) is None:
                    currency = request.amount.currency
                    spendable = available(
                        await locked_balance(session, wallet(client, currency), currency)
                    )
                    await post_entry(
                        session, place_hold(request.key, client, request.amount, spendable)
                    )
                if request.then is not None:
                    await apply_mark(session, request.then)

    @implements(funds.convert_held)
    async def convert_held(self, request: ConvertHeld) -> Money:
        """Convert held money at the newest stored rate less the spread; returns what the
        client gets in the other currency. A rate older than the configured maximum is refused
        (`FxRateStale`), so the transfer is undone and ends refused with that reason."""
        client = str(request.client_id)
        held_after = hold_account(client, request.into)
        async with refusals_as_business_failures():
            async with self._sessions.begin() as session:
                # A retry after the conversion was booked keeps it, however old its rate is now.
                entry = await booked_entry(session, request.key)
                if entry is None:
                    rate = await newest_rate(session, request.sell.currency, request.into)
                    require_fresh(rate, datetime.now(UTC), self._fx_rate_max_age)
                    entry, _ = convert(
                        request.key,
                        client,
                        request.sell,
                        request.into,
                        rate,
                        self._fx_spread_bps,
                        pocket=hold_account,
                    )
                    await post_entry(session, entry)
        [received] = [p.amount for p in entry.postings if p.account == held_after]
        return Money(amount=-received.amount, currency=received.currency)

    @implements(funds.notify_client)
    async def notify_client(self, request: Notify) -> None:
        async with self._sessions.begin() as session:
            await send_notice(session, request)


async def send_notice(session: AsyncSession, notice: Notify) -> None:
    """The notice, once per key: a retry finds it there and adds nothing (one statement)."""
    await session.execute(
        insert(Notification)
        .values(
            client_id=notice.client_id,
            key=notice.key,
            kind=notice.kind,
            message=notice.message,
        )
        .on_conflict_do_nothing(index_elements=[Notification.key])
    )


async def newest_rate(session: AsyncSession, sell: str, into: str) -> FxRate:
    row = await session.scalar(
        select(FxRateRow)
        .where(
            or_(
                (FxRateRow.base == sell) & (FxRateRow.quote == into),
                (FxRateRow.base == into) & (FxRateRow.quote == sell),
            )
        )
        .order_by(desc(FxRateRow.as_of), desc(FxRateRow.id))
        .limit(1)
    )
    if row is None:
        raise ApplicationError(
            f"no FX rate for {sell}/{into} is stored", type="NoFxRate", non_retryable=True
        )
    return FxRate(base=row.base, quote=row.quote, bid=row.bid, ask=row.ask, as_of=row.as_of)
