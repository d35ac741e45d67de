"""The IB payout steps: accrual of the commission ledger from ingested deals (the calculation is
`domain.ib`'s, untouched), payouts opened per IB and currency, the statement PDF, finance's
decisions and the credit of the IB's wallet through the ledger."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack, aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.ib_accrual import (
    LEDGER_COLUMNS,
    LOGIN_AT,
    STORED_COLUMNS,
    SYMBOL_TERMS,
    BatchRows,
    batch_rows,
    copy_escape,
    trace_of,
    worker_started,
)
from contracts import ib_payout
from contracts.funds import StaffDecision
from contracts.ib_payout import (
    AccrualRequest,
    AccrualSummary,
    OpenedPayouts,
    PayAgainRecord,
    PayoutDecisionRecord,
    PayoutPeriod,
    PayoutRef,
    PayoutStatus,
    ReleasePayout,
    RenderedStatement,
    ib_statement_copy_key,
)
from contracts.steps import implements
from db import audit
from db.ledger import post_entry
from db.models.ib import IbAttribution, IbCommission, IbPayout, IntroducingBroker
from db.queries import ib as queries
from db.queries.ib_management import open_fraud_flags
from db.queries.trading import symbol_terms
from domain.errors import InvalidInput
from domain.ib.clawback import Adjustment, adjustments
from domain.ib.rows import Row
from domain.ledger import AccountKind, account_code, transfer
from domain.money import Money
from reports.ib_statement import Statement, StatementLine, render_statement_copies
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


def _document(
    tree: dict[uuid.UUID, queries.TreeNode],
    plans: dict[str, list[dict[str, Any]]],
    attributed: Sequence[IbAttribution],
    accounts: dict[int, tuple[str, str]],
    rates: list[tuple[str, str, Decimal]],
    period: tuple[int, int],
) -> dict[str, Any]:
    """The `domain.ib` document for one batch of logins, without its symbols and deals
    (`activities.ib_accrual` adds them): only the IBs of their chains."""
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
    return {
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


_STAGING = "ib_commission_staging"
_STAGED = [*LEDGER_COLUMNS, "trace_ref"]  # both kinds of line: whole trace, or by reference
# Made once per database session, emptied at each commit. (Every statement is built from this
# module's constants, never from input.)
_STAGING_DDL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} ON COMMIT DELETE ROWS AS"  # noqa: S608
    f" SELECT {', '.join(_STAGED)} FROM ib_commissions WITH NO DATA"
)
_MERGE = (
    f"WITH added AS (INSERT INTO ib_commissions ({', '.join(_STAGED)})"  # noqa: S608
    f" SELECT {', '.join(_STAGED)} FROM {_STAGING}"
    " ON CONFLICT ON CONSTRAINT uq_ib_commissions DO NOTHING RETURNING revision)"
    " SELECT count(*) FILTER (WHERE revision = 0), count(*) FILTER (WHERE revision > 0)"
    " FROM added"
)
# Sorted, so two transactions adding the same templates take their keys in the same order.
_TEMPLATES = text(
    "INSERT INTO ib_commission_traces (key, body)"
    " SELECT k::uuid, b::jsonb FROM unnest(CAST(:keys AS text[]), CAST(:bodies AS text[]))"
    " AS t(k, b) ORDER BY k ON CONFLICT DO NOTHING"
)
_STORED = text(
    "SELECT deal, ib_id::text, revision, amount, currency FROM ib_commissions"
    " WHERE server = :server AND deal = ANY(CAST(:deals AS bigint[]))"
)
_COPY_CHUNK = 1 << 20  # characters per write to the COPY stream


async def _copy(session: AsyncSession, table: str, columns: Sequence[str], lines: list[str]) -> int:
    """COPY text `lines` of `columns` into `table`; answers the rows written."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    async with driver.cursor() as cursor:
        async with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            chunk: list[str] = []
            size = 0
            for line in lines:
                chunk.append(line)
                size += len(line)
                if size >= _COPY_CHUNK:
                    await copy.write("".join(chunk))
                    chunk, size = [], 0
            if chunk:
                await copy.write("".join(chunk))
        return int(cursor.rowcount)


async def _store(
    session: AsyncSession, rows: list[str], adjusted: list[str], *, direct: bool
) -> tuple[int, int]:
    """Store new rows (lines of `STORED_COLUMNS`) and adjustments (lines of `LEDGER_COLUMNS`,
    their whole trace): answers the rows and the adjustments added. `direct`: the batch's
    deals had no rows, so its rows are COPYed straight into the ledger (in a savepoint: a
    concurrent accrual that stored them first makes it fall back); otherwise through a
    session-local staging table, inserting those not there yet (a recomputation finds its rows
    by their unique key)."""
    if not rows and not adjusted:
        return 0, 0
    if direct and not adjusted:
        try:
            async with session.begin_nested():
                return await _copy(session, "ib_commissions", STORED_COLUMNS, rows), 0
        except (psycopg.errors.UniqueViolation, IntegrityError):
            pass  # stored meanwhile by another accrual: the staging table skips them
    await session.execute(text(_STAGING_DDL))
    if rows:
        await _copy(session, _STAGING, STORED_COLUMNS, rows)
    if adjusted:
        await _copy(session, _STAGING, LEDGER_COLUMNS, adjusted)
    added = (await session.execute(text(_MERGE))).one()
    return int(added[0]), int(added[1])


async def store_templates(session: AsyncSession, templates: dict[str, str]) -> None:
    """The trace templates the rows name, added once (content-addressed: never changed)."""
    if templates:
        keys = sorted(templates)
        await session.execute(_TEMPLATES, {"keys": keys, "bodies": [templates[k] for k in keys]})


def _copy_line(values: dict[str, Any]) -> str:
    return "\t".join(copy_escape(str(values[c])) for c in LEDGER_COLUMNS) + "\n"


def _unchanged(stored: Sequence[Any], computed: list[tuple[int, str, str]]) -> set[int]:
    """The rowed deals whose recomputation pays what their stored rows pay: each of their rows
    is revision 0 and the recomputed rows have the same IBs, currencies and amounts (so
    `domain.ib.clawback.adjustments` finds nothing for them; the others are compared whole)."""
    if not stored:
        return set()
    paid: dict[int, dict[tuple[str, str], Decimal]] = {}
    adjusted: set[int] = set()
    seen: set[tuple[int, str]] = set()
    for deal, ib, revision, amount, currency in stored:
        if revision or (deal, ib) in seen:
            adjusted.add(deal)  # compared whole, as `_current_rows` reads it
        seen.add((deal, ib))
        paid.setdefault(deal, {})[(ib, currency)] = amount
    now: dict[int, dict[tuple[str, str], Decimal]] = {}
    for deal, ib, line in computed:
        if deal in paid:
            fields = line.split("\t", 12)
            now.setdefault(deal, {})[(ib, fields[11])] = Decimal(fields[10])
    return {deal for deal, pays in paid.items() if deal not in adjusted and now.get(deal) == pays}


async def store_batch(
    session: AsyncSession, server: str, computed: BatchRows, *, templates_stored: bool = False
) -> AccrualCounts:
    """One batch's computed rows in the ledger: new deals get their rows, deals already rowed
    whose amounts changed (a dealer's correction) get `domain.ib`'s adjustments as new
    revisions. Running it again adds nothing. `templates_stored`: the caller stored the
    batch's trace templates already (in their own transaction)."""
    counts = AccrualCounts(unattributed=computed.unattributed)
    counts.without_account = computed.without_account
    if computed.error is not None:
        raise ApplicationError(
            f"commissions on {server} cannot be computed: {computed.error}",
            type="CommissionDocumentInvalid",
            non_retryable=True,
        )
    if not templates_stored:
        await store_templates(session, computed.templates)
    deals = sorted({deal for deal, _, _ in computed.rows})
    stored = (
        (await session.execute(_STORED, {"server": server, "deals": deals})).all() if deals else []
    )
    rowed_deals = {r[0] for r in stored}
    lines = [line for deal, _, line in computed.rows if deal not in rowed_deals]
    adjusted: list[str] = []
    compared = rowed_deals - _unchanged(stored, computed.rows)
    if compared:
        # Recomputed deals whose amounts moved: only their adjustments are stored (the rarer,
        # slower path).
        paid, revisions = _current_rows(
            await queries.commission_rows(session, server, sorted(compared))
        )
        rows = [
            Row.model_validate(json.loads(trace_of(line, computed.templates))["row"])
            for deal, _, line in computed.rows
            if deal in compared
        ]
        by_key = {(r.deal, r.ib): r for r in rows}
        paid_by_key = {(r.deal, r.ib): r for r in paid}
        for adjustment in adjustments(paid, rows):
            revision = revisions[(adjustment.deal, adjustment.ib)] + 1
            adjusted.append(
                _copy_line(_adjustment_values(server, adjustment, by_key, paid_by_key, revision))
            )
    counts.rows, counts.adjustments = await _store(session, lines, adjusted, direct=not rowed_deals)
    return counts


# From this many batches on, the batches are computed in worker processes while the deals are
# read and the rows stored; below it, in this process. The workers are forked from a fork
# server that loaded only `activities.ib_accrual` (so `domain`): not from this process, whose
# threads (Temporal's, the event loop's) a fork would copy mid-flight, and not spawned, which
# would import the whole worker program again in each.
POOL_FROM_BATCHES = 4
POOL_WORKERS = 2
IN_FLIGHT_PER_WORKER = 2  # batches computed or waiting per worker, so none idles
STORING = 2  # batches stored at once, each in its own transaction


def _accrual_processes() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["activities.ib_accrual"])
    return context


class _Accrual:
    """One accrual: per server, its logins' deals read in one pass, computed batch by batch
    (in the pool when there is one) and stored batch by batch, one transaction each."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        request: AccrualRequest,
        context: tuple[
            dict[uuid.UUID, queries.TreeNode],
            dict[str, list[dict[str, Any]]],
            list[tuple[str, str, Decimal]],
        ],
        pool: Executor | None,
    ) -> None:
        self._sessions = sessions
        self._request = request
        self._context = context
        self._pool = pool
        self._storing = asyncio.Semaphore(STORING)
        self._templates: set[str] = set()  # keys of the templates stored (committed)
        self.counts = AccrualCounts()

    async def server(self, server: str, by_login: dict[int, list[IbAttribution]]) -> None:
        request = self._request
        logins = sorted(by_login)
        async with self._sessions() as session:
            accounts = await queries.accounts_of_logins(session, server, logins)
            symbols = await symbol_terms(session, server)
        in_flight: deque[asyncio.Task[AccrualCounts]] = deque()
        limit = IN_FLIGHT_PER_WORKER * POOL_WORKERS if self._pool else 1
        try:
            async with aclosing(self._batches(server, logins, request)) as batches:
                async for batch, deals in batches:
                    attributed = [a for login in batch for a in by_login[login]]
                    document = self._document(attributed, accounts) | {SYMBOL_TERMS: symbols}
                    in_flight.append(asyncio.create_task(self._batch(server, document, deals)))
                    while len(in_flight) >= limit:
                        self.counts.add(await in_flight.popleft())
            while in_flight:
                self.counts.add(await in_flight.popleft())
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    def _document(
        self, attributed: Sequence[IbAttribution], accounts: dict[int, tuple[str, str]]
    ) -> dict[str, Any]:
        tree, plans, rates = self._context
        mine = {a.login: accounts[a.login] for a in attributed if a.login in accounts}
        period = (self._request.start, self._request.end)
        return _document(tree, plans, attributed, mine, rates, period)

    async def _batches(
        self, server: str, logins: list[int], request: AccrualRequest
    ) -> AsyncGenerator[tuple[list[int], list[tuple[Any, ...]]], None]:
        """`logins` in batches of `logins_per_batch`, each with its deals."""
        size = request.logins_per_batch
        batch_of = {login: n // size for n, login in enumerate(logins)}
        current, deals = 0, list[tuple[Any, ...]]()
        async with self._sessions() as session:
            pages = queries.deals_for_accrual(
                session, server, logins, request.history_from, request.end
            )
            async for page in pages:
                for deal in page:
                    number = batch_of[deal[LOGIN_AT]]
                    while number > current:
                        yield logins[current * size : (current + 1) * size], deals
                        current, deals = current + 1, []
                    deals.append(deal)
        while current * size < len(logins):
            yield logins[current * size : (current + 1) * size], deals
            current, deals = current + 1, []

    async def _batch(
        self, server: str, document: dict[str, Any], deals: list[tuple[Any, ...]]
    ) -> AccrualCounts:
        start = self._request.start
        if self._pool is None:
            computed = batch_rows(server, document, deals, start)
        else:
            loop = asyncio.get_running_loop()
            computed = await loop.run_in_executor(
                self._pool, batch_rows, server, document, deals, start
            )
        async with self._storing:
            # The templates in their own transaction first: batches stored at once share most
            # of them, and would otherwise wait for each other's commit on their keys.
            unknown = {k: v for k, v in computed.templates.items() if k not in self._templates}
            if unknown:
                async with self._sessions.begin() as session:
                    await store_templates(session, unknown)
                self._templates.update(unknown)
            async with self._sessions.begin() as session:
                return await store_batch(session, server, computed, templates_stored=True)


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
    per_server: dict[str, dict[int, list[IbAttribution]]] = {}
    for server in servers:
        async with sessions() as session:
            attributed = await queries.attributions(session, server)
        by_login: dict[int, list[IbAttribution]] = {}
        for a in attributed:
            if a.effective_from < request.end and (
                a.effective_to is None or a.effective_to > request.start
            ):
                by_login.setdefault(a.login, []).append(a)
        per_server[server] = by_login
    batches = sum(-(-len(logins) // request.logins_per_batch) for logins in per_server.values())
    with ExitStack() as stack:
        pool = None
        if batches >= POOL_FROM_BATCHES:
            pool = stack.enter_context(
                ProcessPoolExecutor(
                    POOL_WORKERS,
                    mp_context=_accrual_processes(),
                    initializer=worker_started,
                )
            )
        accrual = _Accrual(sessions, request, (tree, plans, rates), pool)
        for server, by_login in per_server.items():
            await accrual.server(server, by_login)
    counts = accrual.counts
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
                # The IB's open fraud flags: the statement's section for finance.
                fraud_flags=await open_fraud_flags(session, ib.id),
                payout_id=str(payout.id),
                ib_name=ib.name,
                ib_id=str(ib.id),
                period=period_text(payout.period_start, payout.period_end),
                currency=payout.currency,
                status=PayoutStatus.STATEMENT_READY.value,
                lines=lines,
            )
        key = statement_key(ref.payout_id)
        ib_key = ib_statement_copy_key(ref.payout_id)
        missing = [k for k in (key, ib_key) if not await self._documents.exists(k)]
        if missing:
            # Both copies from one layout, in the shared process pool (one process per core: a
            # cycle renders many at once). The IB's copy is written without the section for
            # finance, never cut out of finance's copy. A retry stores only what is missing.
            copies = await asyncio.to_thread(render_statement_copies, statement, pooled=True)
            for missing_key in missing:
                await self._documents.put(
                    missing_key, copies.finance if missing_key == key else copies.ib
                )
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
                    after={"statement_key": key, "ib_copy_key": ib_key},
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
                staff_actor(decision),
                audit.Change(
                    action="ib_payout.approved" if decision.approve else "ib_payout.rejected",
                    entity_type="ib_payout",
                    entity_id=str(payout.id),
                    before={"status": before},
                    after={"status": payout.status, "approved_by": payout.approved_by},
                    reason=decision.reason,
                ),
            )

    @implements(ib_payout.record_ib_payout_pay_again)
    async def record_ib_payout_pay_again(self, record: PayAgainRecord) -> None:
        """An officer's approval of paying the payout again, audited with the officer as actor
        (`ib_payout.pay_again_requested`, or `ib_payout.pay_again_approved` with the last
        approval needed, which moves the payout from needs_attention to approved). A payout
        that no longer needs attention is refused; the same approval recorded again (a retry
        after its commit) finds the payout approved already and writes nothing."""
        decision = record.decision
        async with self._sessions.begin() as session:
            payout = await queries.payout_or_not_found(session, record.payout_id, lock=True)
            if record.approved and payout.status == PayoutStatus.APPROVED.value:
                return  # recorded by an earlier attempt of this step
            if payout.status != PayoutStatus.NEEDS_ATTENTION.value:
                raise ApplicationError(
                    f"the payout is {payout.status}: only one that needs attention is paid again",
                    type="PayoutNotNeedingAttention",
                    non_retryable=True,
                )
            before = {"status": payout.status, "reason": payout.decision_reason}
            if record.approved:
                payout.status = PayoutStatus.APPROVED.value
            audit.record(
                session,
                staff_actor(decision),
                audit.Change(
                    action="ib_payout.pay_again_approved"
                    if record.approved
                    else "ib_payout.pay_again_requested",
                    entity_type="ib_payout",
                    entity_id=str(payout.id),
                    before=before,
                    after={
                        "status": payout.status,
                        "pay_again_approved_by": list(record.approvers),
                        "needed": record.needed,
                    },
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
            await book_payout(session, payout, key, ib_wallet(payout.ib_id, payout.currency))
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
            await queries.release_rows(session, payout.id)
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


async def book_payout(
    session: AsyncSession,
    payout: IbPayout,
    key: str,
    credit: str,
    *,
    to: str = "",
    noted: dict[str, Any] | None = None,
) -> None:
    """Commission expense against `credit` (where the IB is paid), one balanced entry keyed
    `key`, and the payout paid (its audit row with `noted`), in the caller's transaction: a
    retry finds the entry booked and the payout paid."""
    await post_entry(
        session,
        transfer(
            key,
            f"IB commission payout {payout.id}{to}"
            f" ({period_text(payout.period_start, payout.period_end)})",
            debit=commission_expense(payout.currency),
            credit=credit,
            amount=Money(amount=payout.amount, currency=payout.currency),
        ),
    )
    if payout.status == PayoutStatus.PAID.value:
        return
    before = payout.status
    payout.status = PayoutStatus.PAID.value
    payout.ledger_key = key
    record_payout_change(
        session,
        payout.ib_id,
        payout.id,
        "ib_payout.paid",
        before={"status": before},
        after={"status": PayoutStatus.PAID.value, "ledger_key": key, **(noted or {})},
    )


def staff_actor(decision: StaffDecision) -> audit.Actor:
    """The finance officer whose decision a step records, as the audit log names them."""
    return audit.Actor(
        kind="staff",
        id=str(decision.staff_id),
        roles=decision.roles,
        ip=decision.ip,
        request_id=decision.request_id,
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
