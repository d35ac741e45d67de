"""Ledger steps of the money sagas: each books one journal entry, exactly once per key, and
moves its payment's or transfer's status in the same transaction."""

from __future__ import annotations

from sqlalchemy import desc, or_, select
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
from domain.wallets import FxRate, available, convert, hold_account, place_hold, wallet


class LedgerSteps:
    """Database steps on the main task queue."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], fx_spread_bps: int) -> None:
        self._sessions = sessions
        self._fx_spread_bps = fx_spread_bps

    async def _book(self, entry: JournalEntry, then: MarkMovement | None) -> None:
        try:
            async with self._sessions.begin() as session:
                await post_entry(session, entry)
                if then is not None:
                    await apply_mark(session, then)
        except BackOfficeError as error:
            raise as_business_failure(error) from error

    @implements(funds.book_entry)
    async def book_entry(self, booking: Booking) -> None:
        await self._book(booking.entry, booking.then)

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
        try:
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
        except BackOfficeError as error:
            raise as_business_failure(error) from error

    @implements(funds.convert_held)
    async def convert_held(self, request: ConvertHeld) -> Money:
        """Convert held money at the newest stored rate less the spread; returns what the
        client gets in the other currency."""
        client = str(request.client_id)
        held_after = hold_account(client, request.into)
        async with self._sessions.begin() as session:
            entry = await booked_entry(session, request.key)
            if entry is None:
                rate = await newest_rate(session, request.sell.currency, request.into)
                try:
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
                except BackOfficeError as error:
                    raise as_business_failure(error) from error
        [received] = [p.amount for p in entry.postings if p.account == held_after]
        return Money(amount=-received.amount, currency=received.currency)

    @implements(funds.notify_client)
    async def notify_client(self, request: Notify) -> None:
        async with self._sessions.begin() as session:
            if await session.scalar(select(Notification.id).where(Notification.key == request.key)):
                return
            session.add(
                Notification(
                    client_id=request.client_id,
                    key=request.key,
                    kind=request.kind,
                    message=request.message,
                )
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
