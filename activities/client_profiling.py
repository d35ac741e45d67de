"""Steps of client profiling (the `profile_server_accounts` run on the server's queue, with its
quotes) and of a dealer's book move (the database side; the MT5 side is the account change's
`read_mt5_account` / `apply_account_change`)."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from contracts import client_profiling as profiling_steps
from contracts.client_profiling import (
    MarkBookMoveFailedInput,
    ProfileServerInput,
    ProfilesStored,
    RecordBookMovedInput,
)
from contracts.steps import implements
from db import audit
from db.models import BookDecision, DealRow, Mt5Account
from db.queries import profiling as queries
from domain.profiling import (
    AccountMetrics,
    Classification,
    QuoteTape,
    Settings,
    Tick,
    TradeDeal,
    classify,
    profile_accounts,
)

CLOSED = "closed"
# Quotes are read around each entry: the markout (1 s), the jumps the 15 s before it and the
# jumps within 60 s either side, with a margin so that a gap between two read windows is never
# taken for a jump within reach of an entry.
AROUND_ENTRY = timedelta(milliseconds=Settings().around_jump_ms + 2_000)
# Windows closer than this are read as one.
MERGE_GAP = timedelta(minutes=5)


@runtime_checkable
class TickSource(Protocol):
    async def tick_history(
        self, symbol: str, since: datetime, until: datetime
    ) -> list[tuple[int, Decimal, Decimal]]: ...


class NoTicks:
    """A gateway that cannot read quotes: the quote-based metrics stay unknown (None)."""

    async def tick_history(
        self, symbol: str, since: datetime, until: datetime
    ) -> list[tuple[int, Decimal, Decimal]]:
        return []


def tick_source_of(gateway: object) -> TickSource:
    """`gateway` itself when it reads tick history (`WebApiGateway` does), else `NoTicks`."""
    return gateway if isinstance(gateway, TickSource) else NoTicks()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def trade_deal_of(row: DealRow) -> TradeDeal:
    return TradeDeal(
        deal=row.deal,
        login=row.login,
        time_msc=row.time_msc,
        symbol=row.symbol,
        action=row.action,
        entry=row.entry,
        volume=row.volume,
        price=row.price,
        profit=row.profit,
        position_id=row.position_id,
        commission=row.commission,
        storage=row.storage,
        fee=row.fee,
        reason=row.reason,
    )


def windows_around(times: Sequence[datetime]) -> list[tuple[datetime, datetime]]:
    """Merged [time - AROUND_ENTRY, time + AROUND_ENTRY] windows of `times` (sorted)."""
    merged: list[tuple[datetime, datetime]] = []
    for time in sorted(times):
        start, end = time - AROUND_ENTRY, time + AROUND_ENTRY
        if merged and start - merged[-1][1] <= MERGE_GAP:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _json(value: object) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    return value


def metrics_json(metrics: AccountMetrics) -> dict[str, Any]:
    return {k: _json(v) for k, v in dataclasses.asdict(metrics).items()}


def conditions_json(classification: Classification) -> list[dict[str, Any]]:
    return [
        {
            "metric": c.metric,
            "value": _json(c.value),
            "comparison": c.comparison,
            "threshold": _json(c.threshold),
            "met": c.met,
        }
        for c in classification.conditions
    ]


class ClientProfiling:
    """The profiling of one MT5 server (registered on that server's task queue)."""

    def __init__(
        self,
        server: str,
        sessions: async_sessionmaker[AsyncSession],
        ticks: TickSource,
        *,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._server = server
        self._sessions = sessions
        self._ticks = ticks
        self._now = now

    @implements(profiling_steps.profile_server_accounts)
    async def profile_server_accounts(self, request: ProfileServerInput) -> ProfilesStored:
        """Profiles every account with trade deals in the window (except closed ones) and
        stores each one's latest profile (a row per account, replaced by every run)."""
        if request.server != self._server:
            raise ApplicationError(
                f"{request.server} reached the worker of {self._server}",
                type="WrongServer",
                non_retryable=True,
            )
        until = request.until or self._now()
        since = until - request.window
        async with self._sessions() as session:
            rows = await queries.trade_deals_between(session, self._server, since, until)
            accounts = await queries.accounts_on(session, self._server)
        rows = [r for r in rows if accounts.get(r.login, ("", ""))[1] != CLOSED]
        entries: dict[str, list[datetime]] = defaultdict(list)
        for row in rows:
            if row.entry == 0:
                entries[row.symbol].append(row.time)
        tapes: dict[str, QuoteTape] = {}
        truncated: list[str] = []
        read = 0
        for symbol, times in sorted(entries.items()):
            ticks: list[Tick] = []
            for start, end in windows_around(times):
                answer = await self._ticks.tick_history(symbol, start, end)
                ticks += [Tick(t, bid, ask) for t, bid, ask in answer]
                if len(ticks) >= request.max_ticks_per_symbol:
                    truncated.append(symbol)
                    ticks = ticks[: request.max_ticks_per_symbol]
                    break
            read += len(ticks)
            tapes[symbol] = QuoteTape(ticks, Settings().jump_spreads)
        owners = {login: owner for login, (owner, _) in accounts.items()}
        metrics = profile_accounts((trade_deal_of(r) for r in rows), tapes, owners)
        at = self._now()
        stored: list[dict[str, Any]] = []
        for login, figures in sorted(metrics.items()):
            verdict = classify(figures)
            stored.append(
                {
                    "server": self._server,
                    "login": login,
                    "profile": verdict.profile.value,
                    "suggested_book": verdict.book.value,
                    "suggested_a_share": verdict.a_share,
                    "book_reason": verdict.book_reason,
                    "explanation": verdict.explanation,
                    "conditions": conditions_json(verdict),
                    "metrics": metrics_json(figures),
                    "trades": figures.trades,
                    "net_profit": figures.net_profit,
                    "window_from": since,
                    "window_to": until,
                    "computed_at": at,
                }
            )
        async with self._sessions.begin() as session:
            await queries.store_profiles(session, stored)
        return ProfilesStored(
            accounts=len(stored),
            deals=len(rows),
            ticks=read,
            truncated_symbols=truncated,
            by_profile=dict(Counter(row["profile"] for row in stored)),
        )


def _decided_by(decision: BookDecision) -> audit.Actor:
    return audit.Actor(
        kind="staff", id=str(decision.decided_by), roles=tuple(decision.decided_by_roles)
    )


async def _decision(session: AsyncSession, request_id: Any) -> BookDecision:
    decision = await queries.decision_by_id(session, request_id, lock=True)
    if decision is None:
        raise ApplicationError(
            f"book decision {request_id} does not exist", type="DecisionNotFound"
        )
    return decision


class BookMoveRecords:
    """Database steps of a book move, on the main task queue."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @implements(profiling_steps.record_book_moved)
    async def record_book_moved(self, request: RecordBookMovedInput) -> None:
        """The decision applied with the MT5 user before and after, the account row's group,
        the book in `account_books`, and the audit entry, in one transaction."""
        async with self._sessions.begin() as session:
            decision = await _decision(session, request.decision_id)
            if decision.status != queries.MOVING:
                return
            book_before = await queries.set_account_book(
                session,
                decision.server,
                decision.login,
                book=decision.book,
                a_share=decision.a_share,
                set_by=str(decision.decided_by),
                at=request.at,
            )
            account = await session.scalar(
                select(Mt5Account)
                .where(Mt5Account.server == decision.server, Mt5Account.login == decision.login)
                .with_for_update()
            )
            if account is not None:
                account.group = request.after.group
            decision.status = "applied"
            decision.before = {**request.before.model_dump(mode="json"), "book": book_before}
            decision.after = request.after.model_dump(mode="json")
            decision.finished_at = request.at
            audit.record(
                session,
                _decided_by(decision),
                audit.Change(
                    action="profiling.book_moved",
                    entity_type="account_book",
                    entity_id=f"{decision.server}:{decision.login}",
                    before={**book_before, "group": request.before.group},
                    after={
                        "book": decision.book,
                        "a_share": None if decision.a_share is None else f"{decision.a_share:f}",
                        "group": request.after.group,
                        "decision": str(decision.id),
                    },
                    reason=decision.reason,
                ),
            )

    @implements(profiling_steps.mark_book_move_failed)
    async def mark_book_move_failed(self, request: MarkBookMoveFailedInput) -> None:
        async with self._sessions.begin() as session:
            decision = await _decision(session, request.decision_id)
            if decision.status != queries.MOVING:
                return
            decision.status = "failed"
            decision.failure_reason = f"{request.error_type}: {request.reason}"[:2000]
            decision.finished_at = request.at
            audit.record(
                session,
                audit.system_actor(on_behalf_of=str(decision.decided_by)),
                audit.Change(
                    action="profiling.book_move_failed",
                    entity_type="account_book",
                    entity_id=f"{decision.server}:{decision.login}",
                    before={"status": queries.MOVING},
                    after={"status": "failed", "error": request.error_type},
                    reason=decision.failure_reason,
                ),
            )
