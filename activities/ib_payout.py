"""The IB payout steps: accrual of the commission ledger from ingested deals (the calculation is
`domain.ib`'s, untouched), payouts opened per IB and currency, the statement PDF, finance's
decisions and the credit of the IB's wallet through the ledger."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from contracts import ib_payout
from contracts.ib_payout import (
    AccrualRequest,
    AccrualSummary,
    OpenedPayouts,
    PayoutDecisionRecord,
    PayoutPeriod,
    PayoutRef,
    PayoutStatus,
    ReleasePayout,
    RenderedStatement,
)
from contracts.steps import implements
from db import audit
from db.ledger import post_entry
from db.models.ib import IbAttribution, IbCommission, IbPayout, IntroducingBroker
from db.queries import ib as queries
from domain.errors import InvalidInput
from domain.ib.clawback import Adjustment, adjustments
from domain.ib.commissions import compute
from domain.ib.document import PreviewDocument
from domain.ib.rows import Row
from domain.ledger import AccountKind, account_code, transfer
from domain.money import Money
from reports.ib_statement import Statement, StatementLine, render_statement
from storage.documents import DocumentStore

# Where commissions are booked until the chart of accounts has its own kind for them.
COMMISSION_EXPENSE_OWNER = "ib-commissions"


def ib_wallet(ib_id: uuid.UUID, currency: str) -> str:
    """An IB's wallet: a liability, like a client's, owned by `ib-<id>`."""
    return account_code(AccountKind.CLIENT_WALLET, f"ib-{ib_id}", currency)


def commission_expense(currency: str) -> str:
    return account_code(AccountKind.FEES, COMMISSION_EXPENSE_OWNER, currency)


def statement_key(payout_id: uuid.UUID) -> str:
    return f"ib/statements/{payout_id}.pdf"


@dataclass
class AccrualCounts:
    rows: int = 0
    adjustments: int = 0
    unattributed: int = 0
    without_account: int = 0

    def add(self, other: AccrualCounts) -> None:
        self.rows += other.rows
        self.adjustments += other.adjustments
        self.unattributed += other.unattributed
        self.without_account += other.without_account


def _batches(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _document(
    tree: dict[uuid.UUID, queries.TreeNode],
    plans: dict[str, list[dict[str, Any]]],
    attributed: Sequence[IbAttribution],
    accounts: dict[int, tuple[str, str]],
    rates: list[tuple[str, str, Decimal]],
    deals: list[dict[str, Any]],
    period: tuple[int, int],
) -> dict[str, Any]:
    """The `domain.ib` document for one batch of logins: only the IBs of their chains."""
    ibs: dict[str, dict[str, Any]] = {}
    for a in attributed:
        node: queries.TreeNode | None = tree[a.ib_id]
        while node is not None and str(node.id) not in ibs:
            if node.plan is None:
                raise InvalidInput(f"IB {node.name} ({node.id}) has no commission plan")
            ibs[str(node.id)] = {
                "parent": None if node.parent is None else str(node.parent),
                "plan": node.plan,
            }
            node = None if node.parent is None else tree[node.parent]
    symbols = {
        d["Symbol"]: {"contract_size": d["ContractSize"], "digits": d["Digits"]}
        for d in deals
        if d["Symbol"]
    }
    return {
        "symbols": symbols,
        "accounts": {
            login: {"group": group, "currency": currency}
            for login, (group, currency) in accounts.items()
        },
        "ibs": ibs,
        "plans": {plan: {"versions": plans[plan]} for plan in {n["plan"] for n in ibs.values()}},
        "attribution": [
            {"login": a.login, "ib": str(a.ib_id), "from": a.effective_from, "to": a.effective_to}
            for a in attributed
        ],
        "rates": [{"from": s, "to": t, "rate": r} for s, t, r in rates],
        "deals": deals,
        "period": {"from": period[0], "to": period[1]},
    }


def _current_rows(stored: Sequence[IbCommission]) -> tuple[list[Row], dict[tuple[int, str], int]]:
    """What each (deal, IB) pays now, as `domain.ib` rows (the newest revision's row; none
    when an adjustment took the deal away), and the newest revision number of each."""
    newest: dict[tuple[int, str], IbCommission] = {}
    for row in stored:
        key = (row.deal, str(row.ib_id))
        if key not in newest or newest[key].revision < row.revision:
            newest[key] = row
    current = [
        Row.model_validate(r.trace["row"]) for r in newest.values() if r.trace["row"] is not None
    ]
    return current, {key: r.revision for key, r in newest.items()}


def _values(
    server: str,
    row: Row,
    revision: int,
    adjustment: Adjustment | None = None,
    traced: Row | None = None,
) -> dict[str, Any]:
    """A ledger row's columns; `trace` as JSON text, `{"row": …, "adjustment": …}`, where the
    row is `traced` for an adjustment (what the deal pays now; none when it pays nothing)."""
    shown = row if adjustment is None else traced
    return {
        "server": server,
        "deal": row.deal,
        "ib_id": uuid.UUID(row.ib),
        "plan_id": row.plan,
        "version": row.version,
        "revision": revision,
        "level": row.level,
        "login": row.login,
        "symbol": row.symbol,
        "deal_time": row.time,
        "amount": adjustment.amount if adjustment else row.amount,
        "currency": adjustment.currency if adjustment else row.currency,
        "trace": f'{{"row": {shown.model_dump_json() if shown else "null"},'
        f' "adjustment": {adjustment.model_dump_json() if adjustment else "null"}}}',
    }


def _adjustment_values(
    server: str,
    adjustment: Adjustment,
    recomputed: dict[tuple[int, str], Row],
    paid: dict[tuple[int, str], Row],
    revision: int,
) -> dict[str, Any]:
    key = (adjustment.deal, adjustment.ib)
    now = recomputed.get(key)
    return _values(server, now or paid[key], revision, adjustment, now)


_COLUMNS = (
    "server deal ib_id plan_id version revision level login symbol deal_time amount currency trace"
).split()
_STAGING = "ib_commission_staging"
# Made once per database session, emptied at each commit. (Both statements are built from this
# module's constants, never from input.)
_STAGING_DDL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} ON COMMIT DELETE ROWS AS"  # noqa: S608
    f" SELECT {', '.join(_COLUMNS)} FROM ib_commissions WITH NO DATA"
)
_MERGE = (
    f"WITH added AS (INSERT INTO ib_commissions ({', '.join(_COLUMNS)})"  # noqa: S608
    f" SELECT {', '.join(_COLUMNS)} FROM {_STAGING}"
    " ON CONFLICT ON CONSTRAINT uq_ib_commissions DO NOTHING RETURNING revision)"
    " SELECT count(*) FILTER (WHERE revision = 0), count(*) FILTER (WHERE revision > 0)"
    " FROM added"
)


async def _store(session: AsyncSession, values: list[dict[str, Any]]) -> tuple[int, int]:
    """COPY the rows to a staging table and insert those not there yet (a recomputation finds
    its rows by their unique key): answers the rows and the adjustments added."""
    if not values:
        return 0, 0
    await session.execute(text(_STAGING_DDL))
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    async with driver.cursor() as cursor:
        async with cursor.copy(f"COPY {_STAGING} ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            for row in values:
                await copy.write_row([row[c] for c in _COLUMNS])
    added = (await session.execute(text(_MERGE))).one()
    return int(added[0]), int(added[1])


async def accrue_batch(
    session: AsyncSession,
    server: str,
    attributed: Sequence[IbAttribution],
    request: AccrualRequest,
    context: tuple[
        dict[uuid.UUID, queries.TreeNode],
        dict[str, list[dict[str, Any]]],
        list[tuple[str, str, Decimal]],
    ],
) -> AccrualCounts:
    """The rows of one batch of logins' deals in [start, end): new deals get their rows, deals
    already rowed whose amounts changed (a dealer's correction) get `domain.ib`'s adjustments
    as new revisions. Running it again adds nothing."""
    tree, plans, rates = context
    logins = sorted({a.login for a in attributed})
    accounts = await queries.account_terms(session, server, logins)
    deals = await queries.deals_for_commissions(
        session, server, logins, request.history_from, request.end
    )
    counts = AccrualCounts()
    kept = [d for d in deals if d["Login"] in accounts]
    counts.without_account = sum(
        1 for d in deals if d["Login"] not in accounts and request.start <= d["Time"]
    )
    try:
        document = PreviewDocument.model_validate(
            _document(tree, plans, attributed, accounts, rates, kept, (request.start, request.end))
        )
        rows, unattributed = compute(document)
    except (ValidationError, InvalidInput) as error:
        raise ApplicationError(
            f"commissions on {server} cannot be computed: {error}",
            type="CommissionDocumentInvalid",
            non_retryable=True,
        ) from error
    counts.unattributed = len(unattributed)
    stored = await queries.commission_rows(session, server, sorted({r.deal for r in rows}))
    paid, revisions = _current_rows(stored)
    rowed_deals = {r.deal for r in stored}
    values = [_values(server, r, 0) for r in rows if r.deal not in rowed_deals]
    by_key = {(r.deal, r.ib): r for r in rows}
    found = adjustments(paid, [r for r in rows if r.deal in rowed_deals])
    paid_by_key = {(r.deal, r.ib): r for r in paid}
    for adjustment in found:
        revision = revisions[(adjustment.deal, adjustment.ib)] + 1
        values.append(_adjustment_values(server, adjustment, by_key, paid_by_key, revision))
    counts.rows, counts.adjustments = await _store(session, values)
    return counts


async def accrue(
    sessions: async_sessionmaker[AsyncSession], request: AccrualRequest
) -> AccrualSummary:
    """Accrue [start, end) on every server with attributed clients, one transaction per batch
    of logins (a batch is the unit a retry redoes, and redoing one adds nothing)."""
    async with sessions() as session:
        tree = await queries.ib_tree(session)
        plans = await queries.plan_versions(session)
        rates = await queries.mid_rates(session)
        servers = await queries.attributed_servers(session)
    counts = AccrualCounts()
    for server in servers:
        async with sessions() as session:
            attributed = await queries.attributions(session, server)
        by_login: dict[int, list[IbAttribution]] = {}
        for a in attributed:
            if a.effective_from < request.end and (
                a.effective_to is None or a.effective_to > request.start
            ):
                by_login.setdefault(a.login, []).append(a)
        logins = sorted(by_login)
        for batch in _batches(logins, request.logins_per_batch):
            async with sessions.begin() as session:
                counts.add(
                    await accrue_batch(
                        session,
                        server,
                        [a for login in batch for a in by_login[login]],
                        request,
                        (tree, plans, rates),
                    )
                )
    return AccrualSummary(
        rows=counts.rows,
        adjustments=counts.adjustments,
        unattributed=counts.unattributed,
        without_account=counts.without_account,
    )


def _calculation(trace: dict[str, Any]) -> str:
    """The trace in a line a reader can check by hand."""
    adjustment, row = trace["adjustment"], trace["row"]
    if adjustment is not None:
        return (
            f"adjustment: paid {adjustment['paid']}, recomputed {adjustment['recomputed']}"
            f" → {adjustment['amount']} ({adjustment['why']})"
        )
    parts = "; ".join(
        f"{p['basis']} rule {p['rule']}: {p['quantity']} x {p['rate']}"
        f"{' %' if p['basis'].endswith('percent') else ''} = {p['amount']} ({p['note']})"
        for p in row["parts"]
    )
    if row["model"] == "pool":
        share = f"pool {row['own']} x share {row['share']}"
    else:
        share = f"own {row['own']}, capped {row['capped']}, below {row['below']}"
    conversion = row["conversion"]
    converted = (
        f" x {conversion['rate']} {conversion['source']}→{conversion['target']}"
        if conversion
        else ""
    )
    return (
        f"{parts or 'nothing priced'}; {share} → earned {row['earned']}"
        f" {row['earned_currency']}{converted} = {row['amount']} {row['currency']}"
    )


def statement_line(row: IbCommission) -> StatementLine:
    trace = row.trace["row"] or {}
    return StatementLine(
        deal=row.deal,
        time=datetime.fromtimestamp(row.deal_time, UTC).strftime("%Y-%m-%d %H:%M:%S"),
        login=row.login,
        symbol=row.symbol,
        level=row.level,
        plan=row.plan_id,
        version=row.version,
        volume=str(trace.get("volume", "")),
        volume_why=str(trace.get("volume_why", "")),
        calculation=_calculation(row.trace),
        amount=row.amount,
        adjustment=row.revision > 0,
    )


def period_text(start: int, end: int) -> str:
    show = "%Y-%m-%d %H:%M"
    return (
        f"{datetime.fromtimestamp(start, UTC).strftime(show)} to"
        f" {datetime.fromtimestamp(end, UTC).strftime(show)} (end excluded)"
    )


class IbPayoutSteps:
    """Database steps of the payout cycle and of each payout, on the main task queue."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], documents: DocumentStore
    ) -> None:
        self._sessions = sessions
        self._documents = documents

    @implements(ib_payout.accrue_ib_commissions)
    async def accrue_ib_commissions(self, request: AccrualRequest) -> AccrualSummary:
        return await accrue(self._sessions, request)

    @implements(ib_payout.open_ib_payouts)
    async def open_ib_payouts(self, period: PayoutPeriod) -> OpenedPayouts:
        """A payout per IB of this frequency and currency over its unpaid rows of deals before
        the period's end (late rows of earlier periods and adjustments included). A total at
        or below zero opens nothing: its rows wait for the next period. Retried, it finds the
        payouts it opened (unique per IB, period and currency)."""
        async with self._sessions.begin() as session:
            sums = await session.execute(
                select(
                    IbCommission.ib_id,
                    IbCommission.currency,
                    func.sum(IbCommission.amount),
                    func.count(),
                )
                .join(IntroducingBroker, IntroducingBroker.id == IbCommission.ib_id)
                .where(
                    IntroducingBroker.payout_frequency == period.frequency.value,
                    IbCommission.payout_id.is_(None),
                    IbCommission.deal_time < period.end,
                )
                .group_by(IbCommission.ib_id, IbCommission.currency)
            )
            for ib_id, currency, amount, count in list(sums):
                if amount <= 0:
                    continue
                payout_id = uuid.uuid4()
                opened = await session.scalar(
                    insert(IbPayout)
                    .values(
                        id=payout_id,
                        ib_id=ib_id,
                        period_start=period.start,
                        period_end=period.end,
                        amount=amount,
                        currency=currency,
                        rows=count,
                        status=PayoutStatus.ACCRUED.value,
                    )
                    .on_conflict_do_nothing(constraint="uq_ib_payouts")
                    .returning(IbPayout.id)
                )
                if opened is None:
                    continue
                await session.execute(
                    update(IbCommission)
                    .where(
                        IbCommission.ib_id == ib_id,
                        IbCommission.currency == currency,
                        IbCommission.payout_id.is_(None),
                        IbCommission.deal_time < period.end,
                    )
                    .values(payout_id=payout_id)
                )
                record_payout_change(
                    session,
                    ib_id,
                    payout_id,
                    "ib_payout.accrued",
                    after={"amount": str(amount), "currency": currency, "rows": count},
                )
            payouts = await session.scalars(
                select(IbPayout.id)
                .join(IntroducingBroker, IntroducingBroker.id == IbPayout.ib_id)
                .where(
                    IntroducingBroker.payout_frequency == period.frequency.value,
                    IbPayout.period_start == period.start,
                    IbPayout.period_end == period.end,
                )
                .order_by(IbPayout.id)
            )
            return OpenedPayouts(payouts=tuple(payouts))

    @implements(ib_payout.render_ib_statement)
    async def render_ib_statement(self, ref: PayoutRef) -> RenderedStatement:
        """The statement stored once under the payout's key (a retry stores the same bytes or
        finds them there); the payout moves to statement_ready."""
        async with self._sessions() as session:
            payout = await queries.payout_or_not_found(session, ref.payout_id)
            ib = await session.get(IntroducingBroker, payout.ib_id)
            assert ib is not None
            lines = [statement_line(r) for r in await queries.payout_rows(session, payout.id)]
            statement = Statement(
                payout_id=str(payout.id),
                ib_name=ib.name,
                ib_id=str(ib.id),
                period=period_text(payout.period_start, payout.period_end),
                currency=payout.currency,
                status=PayoutStatus.STATEMENT_READY.value,
                lines=lines,
            )
        key = statement_key(ref.payout_id)
        if not await self._documents.exists(key):
            await self._documents.put(key, await asyncio.to_thread(render_statement, statement))
        async with self._sessions.begin() as session:
            payout = await queries.payout_or_not_found(session, ref.payout_id, lock=True)
            if payout.status == PayoutStatus.ACCRUED.value:
                payout.status = PayoutStatus.STATEMENT_READY.value
                payout.statement_key = key
                record_payout_change(
                    session,
                    payout.ib_id,
                    payout.id,
                    "ib_payout.statement_ready",
                    after={"statement_key": key},
                )
            return RenderedStatement(key=key, amount=payout.amount, currency=payout.currency)

    @implements(ib_payout.record_ib_payout_decision)
    async def record_ib_payout_decision(self, record: PayoutDecisionRecord) -> None:
        decision = record.decision
        async with self._sessions.begin() as session:
            payout = await queries.payout_or_not_found(session, record.payout_id, lock=True)
            staff = str(decision.staff_id)
            if decision.approve and staff not in payout.approved_by:
                payout.approved_by = [*payout.approved_by, staff]
            before = payout.status
            if record.new_status is not None:
                payout.status = record.new_status.value
            if not decision.approve:
                payout.decision_reason = decision.reason
            audit.record(
                session,
                audit.Actor(
                    kind="staff",
                    id=staff,
                    roles=decision.roles,
                    ip=decision.ip,
                    request_id=decision.request_id,
                ),
                audit.Change(
                    action="ib_payout.approved" if decision.approve else "ib_payout.rejected",
                    entity_type="ib_payout",
                    entity_id=str(payout.id),
                    before={"status": before},
                    after={"status": payout.status, "approved_by": payout.approved_by},
                    reason=decision.reason,
                ),
            )

    @implements(ib_payout.credit_ib_payout)
    async def credit_ib_payout(self, ref: PayoutRef) -> str:
        """Commission expense against the IB's wallet, one balanced entry keyed by the payout;
        the payout is paid in the same transaction."""
        key = f"ib-payout:{ref.payout_id}"
        async with self._sessions.begin() as session:
            payout = await queries.payout_or_not_found(session, ref.payout_id, lock=True)
            money = Money(amount=payout.amount, currency=payout.currency)
            await post_entry(
                session,
                transfer(
                    key,
                    f"IB commission payout {payout.id}"
                    f" ({period_text(payout.period_start, payout.period_end)})",
                    debit=commission_expense(payout.currency),
                    credit=ib_wallet(payout.ib_id, payout.currency),
                    amount=money,
                ),
            )
            if payout.status != PayoutStatus.PAID.value:
                before = payout.status
                payout.status = PayoutStatus.PAID.value
                payout.ledger_key = key
                record_payout_change(
                    session,
                    payout.ib_id,
                    payout.id,
                    "ib_payout.paid",
                    before={"status": before},
                    after={"status": PayoutStatus.PAID.value, "ledger_key": key},
                )
        return key

    @implements(ib_payout.release_ib_payout)
    async def release_ib_payout(self, request: ReleasePayout) -> None:
        """Rejected: the payout keeps its statement and amount for the record, its rows go
        back to the next cycle."""
        async with self._sessions.begin() as session:
            payout = await queries.payout_or_not_found(session, request.payout_id, lock=True)
            if payout.status == PayoutStatus.PAID.value:
                raise ApplicationError(
                    f"IB payout {payout.id} is paid: it cannot be released",
                    type="PayoutAlreadyPaid",
                    non_retryable=True,
                )
            await session.execute(
                update(IbCommission)
                .where(IbCommission.payout_id == payout.id)
                .values(payout_id=None)
            )
            if payout.status != PayoutStatus.REJECTED.value:
                before = payout.status
                payout.status = PayoutStatus.REJECTED.value
                payout.decision_reason = payout.decision_reason or request.reason
                record_payout_change(
                    session,
                    payout.ib_id,
                    payout.id,
                    "ib_payout.released",
                    before={"status": before},
                    after={"status": PayoutStatus.REJECTED.value},
                    reason=request.reason,
                )


def record_payout_change(
    session: AsyncSession,
    ib_id: uuid.UUID,
    payout_id: uuid.UUID,
    action: str,
    *,
    after: dict[str, Any],
    before: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """The audit row of a payout change the cycle makes itself, on the IB's behalf."""
    audit.record(
        session,
        audit.system_actor(on_behalf_of=str(ib_id)),
        audit.Change(
            action=action,
            entity_type="ib_payout",
            entity_id=str(payout_id),
            before=before,
            after=after,
            reason=reason,
        ),
    )
