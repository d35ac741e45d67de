"""The questions of IB management: the facts the fraud rules judge (`domain.ib.fraud`), the
flags stored, and the look-ups of the tree and plan routes (a cycle in the tree, a plan's
versions, an IB's payout account)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Client, Mt5Account
from db.models.ib import (
    IbAttribution,
    IbCommission,
    IbFraudFlag,
    IbPayout,
    IbPlan,
    IbPlanVersion,
    IntroducingBroker,
)
from db.models.payments import Payment
from db.models.security import AuthSession
from domain.errors import Conflict, NotFound
from domain.ib.fraud import ClientFacts, IbFacts
from domain.roles import PrincipalKind


@dataclass(frozen=True)
class AttributedLogin:
    """A login the IB is paid for during [effective_from, effective_to) (server clock)."""

    ib_id: uuid.UUID
    server: str
    login: int
    effective_from: int
    effective_to: int | None


async def _ips(
    session: AsyncSession, kind: PrincipalKind, subjects: Iterable[uuid.UUID]
) -> dict[uuid.UUID, frozenset[str]]:
    ids = list(set(subjects))
    if not ids:
        return {}
    rows = await session.execute(
        select(AuthSession.subject_id, AuthSession.ip)
        .where(
            AuthSession.principal_kind == kind.value,
            AuthSession.subject_id.in_(ids),
            AuthSession.ip.is_not(None),
        )
        .distinct()
    )
    found: dict[uuid.UUID, set[str]] = defaultdict(set)
    for subject, ip in rows:
        found[subject].add(ip)
    return {k: frozenset(v) for k, v in found.items()}


async def _instruments(
    session: AsyncSession, clients: Iterable[uuid.UUID]
) -> dict[uuid.UUID, frozenset[str]]:
    """The bank accounts each client asked money to be paid to (the instruments BrokerFlow
    stores; card numbers never reach it)."""
    ids = list(set(clients))
    if not ids:
        return {}
    rows = await session.execute(
        select(Payment.client_id, Payment.beneficiary_account)
        .where(Payment.client_id.in_(ids), Payment.beneficiary_account.is_not(None))
        .distinct()
    )
    found: dict[uuid.UUID, set[str]] = defaultdict(set)
    for client_id, account in rows:
        found[client_id].add(account)
    return {k: frozenset(v) for k, v in found.items()}


async def attributed_logins(session: AsyncSession, start: int, end: int) -> list[AttributedLogin]:
    """Every attribution period that overlaps [start, end)."""
    rows = await session.scalars(
        select(IbAttribution)
        .where(
            IbAttribution.effective_from < end,
            or_(IbAttribution.effective_to.is_(None), IbAttribution.effective_to > start),
        )
        .order_by(IbAttribution.server, IbAttribution.login, IbAttribution.effective_from)
    )
    return [
        AttributedLogin(r.ib_id, r.server, r.login, r.effective_from, r.effective_to) for r in rows
    ]


async def fraud_facts(
    session: AsyncSession, start: int, end: int
) -> tuple[list[IbFacts], list[ClientFacts]]:
    """Every IB with its identity, login addresses and own client records' instruments, and
    every client an IB is paid for: attributed logins overlapping [start, end) and clients
    referred at sign-up."""
    ibs = list(await session.scalars(select(IntroducingBroker)))
    if not ibs:
        return [], []
    # The IB's own client records: the owner of the MT5 account it is paid to, a client with
    # its e-mail.
    own: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    paid_to = {
        (i.payout_mt5_server, i.payout_mt5_login): i.id
        for i in ibs
        if i.payout_mt5_server is not None and i.payout_mt5_login is not None
    }
    if paid_to:
        for server, login, client_id in await session.execute(
            select(Mt5Account.server, Mt5Account.login, Mt5Account.client_id).where(
                Mt5Account.login.in_([login for _, login in paid_to])
            )
        ):
            ib_id = paid_to.get((server, login))
            if ib_id is not None:
                own[ib_id].add(client_id)
    by_email = {i.email.lower(): i.id for i in ibs}
    for client_id, email in await session.execute(
        select(Client.id, Client.email).where(func.lower(Client.email).in_(list(by_email)))
    ):
        own[by_email[email.lower()]].add(client_id)

    # The clients each IB is paid for.
    links: list[tuple[uuid.UUID, uuid.UUID, str | None, int | None]] = []
    logins = await attributed_logins(session, start, end)
    if logins:
        accounts = {
            (server, login): client_id
            for server, login, client_id in await session.execute(
                select(Mt5Account.server, Mt5Account.login, Mt5Account.client_id).where(
                    Mt5Account.login.in_({a.login for a in logins})
                )
            )
        }
        for a in logins:
            client_id = accounts.get((a.server, a.login))
            if client_id is not None:
                links.append((a.ib_id, client_id, a.server, a.login))
    for client_id, ib_id in await session.execute(
        select(Client.id, Client.referred_by_ib_id).where(Client.referred_by_ib_id.is_not(None))
    ):
        links.append((ib_id, client_id, None, None))
    client_ids = {c for _, c, _, _ in links}
    people = {
        c.id: c
        for c in (
            await session.scalars(select(Client).where(Client.id.in_(client_ids)))
            if client_ids
            else []
        )
    }
    own_ids = {c for ids in own.values() for c in ids}
    instruments = await _instruments(session, client_ids | own_ids)
    client_ips = await _ips(session, PrincipalKind.CLIENT, client_ids)
    ib_ips = await _ips(session, PrincipalKind.IB, [i.id for i in ibs])

    ib_facts = [
        IbFacts(
            ib_id=str(i.id),
            email=i.email,
            name=i.name,
            ips=ib_ips.get(i.id, frozenset()),
            instruments=frozenset(
                x for c in own.get(i.id, ()) for x in instruments.get(c, frozenset())
            ),
            own_client_ids=frozenset(str(c) for c in own.get(i.id, ())),
        )
        for i in ibs
    ]
    client_facts = [
        ClientFacts(
            ib_id=str(ib_id),
            client_id=str(client_id),
            email=people[client_id].email,
            name=people[client_id].full_name,
            server=server,
            login=login,
            ips=client_ips.get(client_id, frozenset()),
            instruments=instruments.get(client_id, frozenset()),
        )
        for ib_id, client_id, server, login in links
        if client_id in people
    ]
    return ib_facts, client_facts


async def min_hold_in_force(session: AsyncSession, at: int) -> dict[uuid.UUID, int]:
    """IB → the minimum hold (seconds) of its plan's version in force at `at` (0: none)."""
    plans: dict[uuid.UUID, str] = {}
    for ib_id, plan_id in await session.execute(
        select(IntroducingBroker.id, IntroducingBroker.plan_id).where(
            IntroducingBroker.plan_id.is_not(None)
        )
    ):
        plans[ib_id] = plan_id
    if not plans:
        return {}
    versions: dict[str, int] = {}
    for plan_id, terms in await session.execute(
        select(IbPlanVersion.plan_id, IbPlanVersion.terms)
        .where(IbPlanVersion.plan_id.in_(set(plans.values())), IbPlanVersion.effective_from <= at)
        .order_by(IbPlanVersion.plan_id, IbPlanVersion.effective_from)
    ):
        versions[plan_id] = int(terms.get("min_hold_seconds") or 0)  # the latest wins
    return {ib: versions.get(plan, 0) for ib, plan in plans.items() if plan is not None}


# -- flags ---------------------------------------------------------------------------------------


async def fraud_flags(
    session: AsyncSession,
    *,
    ib_ids: Sequence[uuid.UUID] | None = None,
    open_only: bool = True,
    limit: int = 500,
) -> list[IbFraudFlag]:
    query = select(IbFraudFlag)
    if ib_ids is not None:
        query = query.where(IbFraudFlag.ib_id.in_(list(ib_ids)))
    if open_only:
        query = query.where(IbFraudFlag.cleared_at.is_(None))
    return list(await session.scalars(query.order_by(IbFraudFlag.id.desc()).limit(limit)))


async def flagged_ib_count(session: AsyncSession) -> int:
    """How many IBs have at least one open flag."""
    count = await session.scalar(
        select(func.count(func.distinct(IbFraudFlag.ib_id))).where(IbFraudFlag.cleared_at.is_(None))
    )
    return int(count or 0)


async def fraud_flags_of_payout(session: AsyncSession, payout_id: uuid.UUID) -> list[IbFraudFlag]:
    """The open flags of the payout's IB: what finance sees beside the statement."""
    payout = await session.get(IbPayout, payout_id)
    if payout is None:
        raise NotFound(f"no IB payout {payout_id}")
    return await fraud_flags(session, ib_ids=[payout.ib_id])


async def open_fraud_flags(session: AsyncSession, ib_id: uuid.UUID) -> list[IbFraudFlag]:
    """The IB's open flags, newest first: the statement's section for finance."""
    return (await open_fraud_flags_by_ib(session, [ib_id]))[ib_id]


async def open_fraud_flags_by_ib(
    session: AsyncSession, ib_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[IbFraudFlag]]:
    """IB → its open flags, newest first: what finance sees beside each payout (one query for
    a page of payouts) and the statement's section for finance."""
    wanted = list(set(ib_ids))
    found: dict[uuid.UUID, list[IbFraudFlag]] = {ib_id: [] for ib_id in wanted}
    if not wanted:
        return found
    for flag in await session.scalars(
        select(IbFraudFlag)
        .where(IbFraudFlag.ib_id.in_(wanted), IbFraudFlag.cleared_at.is_(None))
        .order_by(IbFraudFlag.id.desc())
    ):
        found[flag.ib_id].append(flag)
    return found


async def fraud_flag_or_not_found(
    session: AsyncSession, flag_id: int, *, lock: bool = False
) -> IbFraudFlag:
    flag = await session.get(IbFraudFlag, flag_id, with_for_update=lock)
    if flag is None:
        raise NotFound(f"no IB fraud flag {flag_id}")
    return flag


# -- attribution ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attributed:
    """An attribution period just opened, and the one it closed (if the login had one)."""

    row: IbAttribution
    closed: IbAttribution | None


async def open_attribution(
    session: AsyncSession,
    *,
    server: str,
    login: int,
    ib_id: uuid.UUID,
    effective_from: int,
    source: str,
) -> Attributed:
    """The one writer of attribution periods: the login is `ib_id`'s client from
    `effective_from` (server clock), its open period (if any) closed there. Refused (`Conflict`)
    at or before a deal the ledger already holds for the login, or at or before the open
    period's start, so a reassignment never moves a deal that was accrued or paid. The caller
    checks the IB and writes the audit row (staff: `POST /v1/ib-attributions`; a referral: the
    account-opening step)."""
    accrued_until = await session.scalar(
        select(func.max(IbCommission.deal_time)).where(
            IbCommission.server == server, IbCommission.login == login
        )
    )
    if accrued_until is not None and effective_from <= accrued_until:
        raise Conflict(
            f"login {login} has commissions on deals up to {accrued_until}:"
            " a reassignment starts after them"
        )
    current = await open_attribution_of(session, server, login, lock=True)
    if current is not None:
        if current.effective_from >= effective_from:
            raise Conflict(
                f"login {login} is attributed from {current.effective_from}:"
                " a reassignment starts after that"
            )
        current.effective_to = effective_from
    row = IbAttribution(
        server=server, login=login, ib_id=ib_id, effective_from=effective_from, source=source
    )
    session.add(row)
    await session.flush()
    return Attributed(row=row, closed=current)


async def open_attribution_of(
    session: AsyncSession, server: str, login: int, *, lock: bool = False
) -> IbAttribution | None:
    """The login's open attribution period (at most one), if any."""
    query = select(IbAttribution).where(
        IbAttribution.server == server,
        IbAttribution.login == login,
        IbAttribution.effective_to.is_(None),
    )
    found: IbAttribution | None = await session.scalar(query.with_for_update() if lock else query)
    return found


async def ib_by_referral_code(session: AsyncSession, code: str) -> IntroducingBroker | None:
    found: IntroducingBroker | None = await session.scalar(
        select(IntroducingBroker).where(IntroducingBroker.referral_code == code)
    )
    return found


# -- tree and plans ------------------------------------------------------------------------------


async def ib_or_not_found(
    session: AsyncSession, ib_id: uuid.UUID, *, lock: bool = False
) -> IntroducingBroker:
    ib = await session.get(IntroducingBroker, ib_id, with_for_update=lock)
    if ib is None:
        raise NotFound(f"no IB {ib_id}")
    return ib


async def ancestors(session: AsyncSession, ib_id: uuid.UUID) -> list[uuid.UUID]:
    """`ib_id`'s parent, its parent's parent, ... up to the top (a recursive query; a cycle,
    which the routes refuse, would stop at its first repeat)."""
    tree = select(IntroducingBroker.id, IntroducingBroker.parent_id).where(
        IntroducingBroker.id == ib_id
    )
    up = tree.cte("up", recursive=True)
    parent = select(IntroducingBroker.id, IntroducingBroker.parent_id).join(
        up, IntroducingBroker.id == up.c.parent_id
    )
    up = up.union(parent)
    rows = await session.execute(select(up.c.id).where(up.c.id != ib_id))
    return [r for (r,) in rows]


async def plan_or_not_found(session: AsyncSession, plan_id: str) -> IbPlan:
    plan = await session.get(IbPlan, plan_id)
    if plan is None:
        raise NotFound(f"no IB plan {plan_id!r}")
    return plan


async def plan_versions_of(session: AsyncSession, plan_id: str) -> list[IbPlanVersion]:
    return list(
        await session.scalars(
            select(IbPlanVersion)
            .where(IbPlanVersion.plan_id == plan_id)
            .order_by(IbPlanVersion.version)
        )
    )


async def plans(session: AsyncSession) -> list[IbPlan]:
    return list(await session.scalars(select(IbPlan).order_by(IbPlan.id)))


async def mt5_account(session: AsyncSession, server: str, login: int) -> Mt5Account | None:
    account: Mt5Account | None = await session.scalar(
        select(Mt5Account).where(Mt5Account.server == server, Mt5Account.login == login)
    )
    return account
