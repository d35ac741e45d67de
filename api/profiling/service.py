"""Client profiles and the dealer's decision: the list and detail read the stored profiles; an
acceptance or override writes the decision and its audit row in the request's transaction and
starts the `BookMove` workflow that moves the account to the book's MT5 group."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.policy import Principal
from api.profiling.schemas import (
    ConditionView,
    CurrentBook,
    DecisionView,
    ProfileDetail,
    ProfilePage,
    ProfileView,
)
from api.temporal import TemporalConnector, start_once
from contracts.client_profiling import BOOK_MOVE, BookMoveInput, book_move_workflow_id
from db import audit
from db.models import BookDecision, ClientProfileRow
from db.queries import profiling as queries
from db.queries import risk as risk_queries
from domain.errors import Conflict, InvalidInput, NotFound
from settings import Settings


async def profiles(
    session: AsyncSession, *, server: str | None, profile: str | None, limit: int, offset: int
) -> ProfilePage:
    rows, total = await queries.profiles_page(
        session, server=server, profile=profile, limit=limit, offset=offset
    )
    latest = await queries.latest_decisions(session, [(r.server, r.login) for r in rows])
    return ProfilePage(
        items=[ProfileView.of(r, latest.get((r.server, r.login))) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


async def _profile_or_404(
    session: AsyncSession, server: str, login: int, *, lock: bool = False
) -> ClientProfileRow:
    row = await queries.profile_of(session, server, login, lock=lock)
    if row is None:
        raise NotFound(f"no profile of {login} on {server}")
    return row


async def _current_book(session: AsyncSession, server: str, login: int) -> CurrentBook:
    row = await risk_queries.book_of(session, server, login)
    if row is None:
        return CurrentBook(book="B", a_share=None, default=True)
    share = None if row.a_share is None else format(row.a_share.normalize(), "f")
    return CurrentBook(book=row.book, a_share=share)


async def profile(session: AsyncSession, server: str, login: int) -> ProfileDetail:
    row = await _profile_or_404(session, server, login)
    decisions = await queries.decisions_of(session, server, login)
    view = ProfileView.of(row, decisions[0] if decisions else None)
    return ProfileDetail(
        **view.model_dump(exclude={"latest_decision"}),
        latest_decision=view.latest_decision,
        conditions=[ConditionView.model_validate(c) for c in row.conditions],
        metrics=row.metrics,
        current_book=await _current_book(session, server, login),
        decisions=[DecisionView.of(d) for d in decisions],
    )


async def decide(
    session: AsyncSession,
    temporal: TemporalConnector,
    settings: Settings,
    staff: Principal,
    server: str,
    login: int,
    *,
    book: str | None,
    a_share: Decimal | None = None,
    reason: str | None = None,
) -> DecisionView:
    """`book` None: accept the suggestion; else override it with `book` (and `a_share` for a
    hybrid). One decision moves an account at a time."""
    row = await _profile_or_404(session, server, login, lock=True)
    if book is None:
        kind, book = "accept", row.suggested_book
        a_share = row.suggested_a_share if book == "hybrid" else None
    else:
        kind = "override"
        if (book == "hybrid") != (a_share is not None):
            raise InvalidInput(
                "a_share is given for a hybrid book, and only for it", field="a_share"
            )
        if a_share is not None and not Decimal(0) < a_share < Decimal(1):
            raise InvalidInput("a_share must be above 0 and below 1", field="a_share")
    group = settings.profiling.group_for(server, book)
    if not group:
        raise InvalidInput(f"no MT5 group is configured for book {book} on {server}", field="book")
    if await queries.moving_decision_of(session, server, login) is not None:
        raise Conflict(f"a book decision on {login} is still moving the account; wait for it")
    current = await _current_book(session, server, login)
    account = await risk_queries.mt5_account_on(session, server, login)
    decision = BookDecision(
        id=uuid.uuid4(),
        server=server,
        login=login,
        kind=kind,
        book=book,
        a_share=a_share,
        target_group=group,
        profile=row.profile,
        suggested_book=row.suggested_book,
        profile_computed_at=row.computed_at,
        reason=reason,
        status=queries.MOVING,
        decided_by=staff.id,
        decided_by_roles=sorted(staff.roles),
    )
    session.add(decision)
    before: dict[str, Any] = {
        **current.model_dump(),
        "group": None if account is None else account.group,
    }
    audit.record(
        session,
        staff.actor(),
        audit.Change(
            action=f"profiling.book_{'accepted' if kind == 'accept' else 'overridden'}",
            entity_type="account_book",
            entity_id=f"{server}:{login}",
            before=before,
            after={
                "book": book,
                "a_share": None if a_share is None else format(a_share.normalize(), "f"),
                "group": group,
                "suggested_book": row.suggested_book,
                "profile": row.profile,
                "decision": str(decision.id),
            },
            reason=reason,
        ),
    )
    await session.flush()
    await start_once(
        temporal,
        BOOK_MOVE,
        BookMoveInput(decision_id=decision.id, server=server, login=login, group=group),
        book_move_workflow_id(decision.id),
    )
    await session.refresh(decision)
    return DecisionView.of(decision)
