"""IB management steps: where an approved payout is paid and its MT5 booking (the MT5 credit
itself is the deposits' `mt5_credit_balance`, exactly once by its comment), a payout that needs
attention, and the fraud flags the payout cycle stores (`domain.ib.fraud` judges)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.ib_payout import book_payout, record_payout_change
from contracts import ib_payout
from contracts.ib_payout import (
    HISTORY_SECONDS,
    FraudCheck,
    FraudCheckSummary,
    Mt5PayoutBooking,
    PayoutAttention,
    PayoutDestination,
    PayoutRef,
    PayoutStatus,
)
from contracts.steps import implements
from db import audit
from db.models.ib import IbFraudFlag, IntroducingBroker
from db.queries import ib as ib_queries
from db.queries import ib_management as queries
from domain.funds import mt5_mirror
from domain.ib.fraud import Flag, LoginTrades, detect
from domain.money_flows import Mt5AccountRef


def mt5_payout_key(payout_id: object) -> str:
    """The payout's ledger entry key, the same whether paid to the wallet or to MT5: a payout
    is booked once, wherever it went."""
    return f"ib-payout:{payout_id}"


class IbManagementSteps:
    """Database steps of IB management, on the main task queue."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @implements(ib_payout.ib_payout_destination)
    async def ib_payout_destination(self, ref: PayoutRef) -> PayoutDestination:
        """The IB's wallet, or its MT5 account when one is set. MT5 credits the amount in the
        account's own currency, so an account in another currency than the payout's (or one
        BrokerFlow has no row for, whose currency is unknown) is a problem, never a credit."""
        async with self._sessions() as session:
            payout = await ib_queries.payout_or_not_found(session, ref.payout_id)
            ib = await session.get(IntroducingBroker, payout.ib_id)
            assert ib is not None
            destination = PayoutDestination(amount=payout.amount, currency=payout.currency)
            if ib.payout_mt5_server is None or ib.payout_mt5_login is None:
                return destination
            server, login = ib.payout_mt5_server, ib.payout_mt5_login
            account = await queries.mt5_account(session, server, login)
            problem = None
            if account is None:
                problem = f"MT5 account {server}/{login} is not one BrokerFlow opened"
            elif account.currency != payout.currency:
                problem = (
                    f"MT5 account {server}/{login} is in {account.currency}, the payout in "
                    f"{payout.currency}"
                )
            return destination.model_copy(
                update={"mt5": Mt5AccountRef(server=server, login=login), "problem": problem}
            )

    @implements(ib_payout.book_ib_mt5_payout)
    async def book_ib_mt5_payout(self, booking: Mt5PayoutBooking) -> str:
        """Commission expense against the MT5 account's mirror (where the ledger keeps what
        BrokerFlow put on an MT5 account, as a deposit to MT5 does), one balanced entry keyed by
        the payout; the payout is paid, with the deal's ticket, in the same transaction."""
        key = mt5_payout_key(booking.payout_id)
        account = booking.account
        async with self._sessions.begin() as session:
            payout = await ib_queries.payout_or_not_found(session, booking.payout_id, lock=True)
            payout.mt5_ticket = booking.ticket
            where = f"{account.server}/{account.login}"
            await book_payout(
                session,
                payout,
                key,
                mt5_mirror(account.server, account.login, payout.currency),
                to=f" to MT5 {where}",
                noted={"mt5": where, "mt5_ticket": booking.ticket},
            )
        return key

    @implements(ib_payout.mark_ib_payout_needs_attention)
    async def mark_ib_payout_needs_attention(self, request: PayoutAttention) -> None:
        """Nothing was paid: the payout keeps its rows and shows why (`decision_reason`)."""
        async with self._sessions.begin() as session:
            payout = await ib_queries.payout_or_not_found(session, request.payout_id, lock=True)
            if payout.status == PayoutStatus.NEEDS_ATTENTION.value:
                return
            before = payout.status
            payout.status = PayoutStatus.NEEDS_ATTENTION.value
            payout.decision_reason = request.reason
            record_payout_change(
                session,
                payout.ib_id,
                payout.id,
                "ib_payout.needs_attention",
                before={"status": before},
                after={"status": PayoutStatus.NEEDS_ATTENTION.value},
                reason=request.reason,
            )

    @implements(ib_payout.flag_ib_fraud)
    async def flag_ib_fraud(self, check: FraudCheck) -> FraudCheckSummary:
        """The fraud rules over [start, end); new flags stored once per IB, rule and evidence
        (a retry or the next cycle finds them stored), each with its audit row."""
        async with self._sessions() as session:
            ibs, clients = await queries.fraud_facts(session, check.start, check.end)
            holds = await queries.min_hold_in_force(session, check.end - 1)
            periods = await queries.attributed_logins(session, check.start, check.end)
            by_server: dict[str, list[queries.AttributedLogin]] = defaultdict(list)
            for period in periods:
                if holds.get(period.ib_id, 0) > 0:
                    by_server[period.server].append(period)
            trading: list[LoginTrades] = []
            for server, logins in by_server.items():
                deals = await ib_queries.deals_for_commissions(
                    session,
                    server,
                    sorted({p.login for p in logins}),
                    check.start - HISTORY_SECONDS,
                    check.end,
                )
                per_login: dict[int, list[dict[str, Any]]] = defaultdict(list)
                for deal in deals:
                    per_login[int(deal["Login"])].append(deal)
                for p in logins:
                    # Closes in the IB's own period only; openings before it are history.
                    trading.append(
                        LoginTrades(
                            ib_id=str(p.ib_id),
                            server=server,
                            login=p.login,
                            min_hold_seconds=holds[p.ib_id],
                            deals=[
                                d
                                for d in per_login.get(p.login, [])
                                if p.effective_to is None or int(d["Time"]) < p.effective_to
                            ],
                        )
                    )
        flags = detect(ibs, clients, trading, check.start, check.end)
        stored = 0
        async with self._sessions.begin() as session:
            for flag in flags:
                stored += await store_flag(session, flag)
            flagged = await queries.flagged_ib_count(session)
        return FraudCheckSummary(flags=stored, ibs=flagged)


async def store_flag(session: AsyncSession, flag: Flag) -> int:
    """1 when the flag is new (with its audit row), 0 when that evidence is flagged already."""
    flag_id = await session.scalar(
        insert(IbFraudFlag)
        .values(
            ib_id=flag.ib_id,
            rule=flag.rule.value,
            evidence_key=flag.evidence_key,
            server=flag.server,
            login=flag.login,
            client_id=flag.client_id,
            detail=flag.detail,
            evidence=flag.evidence,
        )
        .on_conflict_do_nothing(constraint="uq_ib_fraud_flags")
        .returning(IbFraudFlag.id)
    )
    if flag_id is None:
        return 0
    audit.record(
        session,
        audit.system_actor(on_behalf_of=flag.ib_id),
        audit.Change(
            action="ib_fraud_flag.raised",
            entity_type="ib_fraud_flag",
            entity_id=str(flag_id),
            after={
                "ib_id": flag.ib_id,
                "rule": flag.rule.value,
                "evidence_key": flag.evidence_key,
                "detail": flag.detail,
            },
        ),
    )
    return 1
