"""The risk desk's questions: what the live exposure of a server reads (its ingested positions,
each BrokerFlow account's group, leverage, currency, country, equity and book, the newest FX
rates), the exposure series, the alert thresholds and the alerts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import BigInteger, String, any_, cast, delete, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import (
    AccountBook,
    AccountStateRow,
    Client,
    ExposurePointRow,
    FxRateRow,
    Mt5Account,
    PositionRow,
    RiskAlert,
    RiskThreshold,
    StaffUser,
)

RESOLVED = "resolved"


class OpenPosition(NamedTuple):
    login: int
    symbol: str
    action: int
    volume: int
    price_open: Decimal
    price_current: Decimal


class AccountFacts(NamedTuple):
    """One BrokerFlow account on a server as the exposure reads it."""

    login: int
    group: str
    leverage: int
    currency: str
    country: str
    equity: Decimal | None  # None: no account state ingested yet
    book: str | None  # None: no book set (a client's default is B)
    a_share: Decimal | None


class OutsideFacts(NamedTuple):
    """What BrokerFlow knows of a login it did not open (no `mt5_accounts` row): its last
    equity and its book; group, leverage and currency are MT5's to tell."""

    login: int
    equity: Decimal | None
    book: str | None
    a_share: Decimal | None


class FxQuote(NamedTuple):
    base: str
    quote: str
    bid: Decimal
    ask: Decimal


async def open_positions_of(session: AsyncSession, server: str) -> list[OpenPosition]:
    """The open positions of `server` at the last snapshot, as plain rows."""
    rows = await session.execute(
        select(
            PositionRow.login,
            PositionRow.symbol,
            PositionRow.action,
            PositionRow.volume,
            PositionRow.price_open,
            PositionRow.price_current,
        ).where(PositionRow.server == server)
    )
    return [OpenPosition(*row) for row in rows.all()]


async def exposure_accounts_of(session: AsyncSession, server: str) -> list[AccountFacts]:
    """Every BrokerFlow account on `server` with its client's country, its last equity and
    its book."""
    rows = await session.execute(
        select(
            Mt5Account.login,
            Mt5Account.group,
            Mt5Account.leverage,
            Mt5Account.currency,
            Client.country,
            AccountStateRow.equity,
            AccountBook.book,
            AccountBook.a_share,
        )
        .join(Client, Client.id == Mt5Account.client_id)
        .outerjoin(
            AccountStateRow,
            (AccountStateRow.server == Mt5Account.server)
            & (AccountStateRow.login == Mt5Account.login),
        )
        .outerjoin(
            AccountBook,
            (AccountBook.server == Mt5Account.server) & (AccountBook.login == Mt5Account.login),
        )
        .where(Mt5Account.server == server)
    )
    return [AccountFacts(*row) for row in rows.all()]


async def outside_facts_of(
    session: AsyncSession, server: str, logins: Sequence[int]
) -> dict[int, OutsideFacts]:
    """The last equity and the book of each of `logins` on `server` (None where none is
    stored), whether or not BrokerFlow opened the account."""
    if not logins:
        return {}
    # One array parameter, not one per login: a server may have thousands of them.
    wanted = any_(cast(list(logins), ARRAY(BigInteger)))
    rows = await session.execute(
        select(AccountStateRow.login, AccountStateRow.equity).where(
            AccountStateRow.server == server, AccountStateRow.login == wanted
        )
    )
    equities: dict[int, Decimal] = {login: equity for login, equity in rows.tuples()}
    books = {
        row.login: row
        for row in (
            await session.scalars(
                select(AccountBook).where(AccountBook.server == server, AccountBook.login == wanted)
            )
        ).all()
    }
    found: dict[int, OutsideFacts] = {}
    for login in logins:
        book = books.get(login)
        found[login] = OutsideFacts(
            login,
            equities.get(login),
            None if book is None else book.book,
            None if book is None else book.a_share,
        )
    return found


async def newest_fx_quotes(session: AsyncSession) -> list[FxQuote]:
    """The newest stored rate of every pair, whatever its source."""
    rows = await session.execute(
        select(FxRateRow.base, FxRateRow.quote, FxRateRow.bid, FxRateRow.ask)
        .distinct(FxRateRow.base, FxRateRow.quote)
        .order_by(FxRateRow.base, FxRateRow.quote, FxRateRow.as_of.desc(), FxRateRow.id.desc())
    )
    return [FxQuote(*row) for row in rows.all()]


async def book_of(
    session: AsyncSession, server: str, login: int, *, lock: bool = False
) -> AccountBook | None:
    query = select(AccountBook).where(AccountBook.server == server, AccountBook.login == login)
    found: AccountBook | None = await session.scalar(query.with_for_update() if lock else query)
    return found


async def books_of(session: AsyncSession, server: str) -> Sequence[AccountBook]:
    result = await session.scalars(
        select(AccountBook).where(AccountBook.server == server).order_by(AccountBook.login)
    )
    return result.all()


async def mt5_account_on(session: AsyncSession, server: str, login: int) -> Mt5Account | None:
    found: Mt5Account | None = await session.scalar(
        select(Mt5Account).where(Mt5Account.server == server, Mt5Account.login == login)
    )
    return found


async def drop_points_before(session: AsyncSession, server: str, before: datetime) -> None:
    """The series' retention: points of `server` older than `before` are deleted."""
    await session.execute(
        delete(ExposurePointRow).where(
            ExposurePointRow.server == server, ExposurePointRow.at < before
        )
    )


async def point_at_or_before(
    session: AsyncSession, server: str, at: datetime
) -> ExposurePointRow | None:
    """The newest point of `server` taken at or before `at`."""
    found: ExposurePointRow | None = await session.scalar(
        select(ExposurePointRow)
        .where(ExposurePointRow.server == server, ExposurePointRow.at <= at)
        .order_by(ExposurePointRow.at.desc(), ExposurePointRow.id.desc())
        .limit(1)
    )
    return found


async def newest_point(session: AsyncSession, server: str) -> ExposurePointRow | None:
    found: ExposurePointRow | None = await session.scalar(
        select(ExposurePointRow)
        .where(ExposurePointRow.server == server)
        .order_by(ExposurePointRow.at.desc(), ExposurePointRow.id.desc())
        .limit(1)
    )
    return found


async def points_since(
    session: AsyncSession, server: str, since: datetime, *, limit: int = 500
) -> list[ExposurePointRow]:
    """The newest `limit` points of `server` taken after `since`, oldest first."""
    rows = await session.scalars(
        select(ExposurePointRow)
        .where(ExposurePointRow.server == server, ExposurePointRow.at > since)
        .order_by(ExposurePointRow.at.desc(), ExposurePointRow.id.desc())
        .limit(limit)
    )
    return list(reversed(rows.all()))


async def exposure_servers(session: AsyncSession) -> list[str]:
    """The servers with at least one point, by name."""
    rows = await session.scalars(select(ExposurePointRow.server).distinct())
    return sorted(rows.all())


async def thresholds_for(session: AsyncSession, server: str) -> Sequence[RiskThreshold]:
    """The active thresholds that apply to `server` (its own and those of every server)."""
    result = await session.scalars(
        select(RiskThreshold)
        .where(
            RiskThreshold.active.is_(True),
            or_(RiskThreshold.server.is_(None), RiskThreshold.server == server),
        )
        .order_by(RiskThreshold.created_at, RiskThreshold.id)
    )
    return result.all()


async def thresholds_newest_first(session: AsyncSession) -> Sequence[RiskThreshold]:
    result = await session.scalars(
        select(RiskThreshold).order_by(RiskThreshold.created_at.desc(), RiskThreshold.id)
    )
    return result.all()


async def threshold_by_id(
    session: AsyncSession, threshold_id: uuid.UUID, *, lock: bool = False
) -> RiskThreshold | None:
    query = select(RiskThreshold).where(RiskThreshold.id == threshold_id)
    found: RiskThreshold | None = await session.scalar(query.with_for_update() if lock else query)
    return found


async def latest_alerts_of(session: AsyncSession, server: str) -> dict[uuid.UUID, RiskAlert]:
    """Per threshold, the newest alert it raised on `server` (resolved or not): its
    `cleared_at` says whether the threshold is raised now (the hysteresis' state). Not locked
    (DISTINCT ON cannot be): one run per server at a time (the schedule skips overlaps), and
    the unique index on unresolved alerts refuses a second one."""
    rows = await session.scalars(
        select(RiskAlert)
        .where(RiskAlert.server == server)
        .distinct(RiskAlert.threshold_id)
        .order_by(RiskAlert.threshold_id, RiskAlert.raised_at.desc(), RiskAlert.id)
    )
    return {alert.threshold_id: alert for alert in rows.all()}


async def alerts_unresolved(session: AsyncSession, *, limit: int = 200) -> Sequence[RiskAlert]:
    """Alerts staff have not resolved, newest first."""
    result = await session.scalars(
        select(RiskAlert)
        .where(RiskAlert.status != RESOLVED)
        .order_by(RiskAlert.raised_at.desc(), RiskAlert.id)
        .limit(limit)
    )
    return result.all()


async def alert_by_id(
    session: AsyncSession, alert_id: uuid.UUID, *, lock: bool = False
) -> RiskAlert | None:
    query = select(RiskAlert).where(RiskAlert.id == alert_id)
    found: RiskAlert | None = await session.scalar(query.with_for_update() if lock else query)
    return found


async def risk_desk_emails(session: AsyncSession) -> list[str]:
    """The addresses of active staff users with the risk or dealer role, sorted."""
    rows = await session.scalars(
        select(StaffUser.email).where(
            StaffUser.active.is_(True),
            StaffUser.roles.overlap(cast(["risk", "dealer"], ARRAY(String(32)))),
        )
    )
    return sorted(rows.all())
