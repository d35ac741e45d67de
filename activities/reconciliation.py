"""The scheduled reconciliation's steps (contracts/reconciliation.py): the run's row, its MT5 and
processor snapshots, the matching (`match_run`: the three sides read from the database and
matched by `domain.reconciliation`, the code `python -m reconciliation.check` runs; its breaks
stored with the run) and the break cases finance works (docs/reconciliation.md).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.mt5_errors import raise_for_temporal
from contracts.reconciliation import (
    FetchDeals,
    FetchSettlements,
    FileCases,
    FiledCases,
    Matched,
    OpenRun,
    RunRef,
    Stored,
    fetch_reconciliation_deals,
    fetch_settlement_reports,
    file_reconciliation_cases,
    match_reconciliation_run,
    open_reconciliation_run,
)
from contracts.steps import implements
from db.audit import Change, record, system_actor
from db.models import Mt5Account
from db.models.reconciliation import (
    ReconciliationBreak,
    ReconciliationMt5Deal,
    ReconciliationPspRow,
    ReconciliationRun,
)
from db.models.reconciliation_cases import ReconciliationCase
from db.queries.reconciliation import run_period, run_sides, store_breaks
from db.queries.reconciliation_cases import CUT_OFF_TIMING, breaks_of_run, open_cases_by_key
from domain.money import MINOR_UNITS
from domain.reconciliation.matching import reconcile
from domain.reconciliation.records import SETTLEMENT_KINDS, TRADE_ACTIONS, Result
from mt5_adapter.errors import Mt5Error
from mt5_adapter.gateway import Mt5Gateway
from psp_adapter.gateway import PaymentProvider

# The alert: operations (and finance) watch this logger, a WARNING per new break at or above
# the threshold; the console shows the same cases as alerted.
alerts = logging.getLogger("brokerflow.reconciliation")
# `deal/get_batch` answers at most this many deals (mt5_adapter.webapi.MAX_DEAL_BATCH): a full
# answer means more in the window, which is then read in halves.
MAX_DEAL_BATCH = 100_000
SMALLEST_WINDOW = timedelta(seconds=1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def match_run(sessions: async_sessionmaker[AsyncSession], run_id: uuid.UUID) -> Result:
    """Match run `run_id` and store its breaks (replacing those of an earlier attempt), in one
    transaction."""
    async with sessions.begin() as session:
        run = await session.get(ReconciliationRun, run_id, with_for_update=True)
        if run is None:
            raise LookupError(f"no reconciliation run {run_id}")
        sides = await run_sides(session, run)
        result = reconcile(run_period(run), sides)
        await session.execute(
            delete(ReconciliationBreak).where(ReconciliationBreak.run_id == run.id)
        )
        await store_breaks(session, run.id, result.breaks)
        run.status = "matched"
        run.matched = result.matched
        run.breaks = len(result.breaks)
        run.finished_at = datetime.now(UTC)
    return result


def minor_units(amount: str | Decimal, currency: str) -> int:
    """`amount` in minor units of `currency`, rounded half-even to the unit (MT5 writes
    Profit with the account's digits; a stray extra digit must not fail the run)."""
    units = MINOR_UNITS.get(currency, 2)
    return int((Decimal(amount).scaleb(units)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


class ReconciliationSteps:
    """The run's database and processor steps (main task queue)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        providers: Mapping[str, PaymentProvider],
        *,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._sessions = sessions
        self._providers = providers
        self._now = now

    @implements(open_reconciliation_run)
    async def open_reconciliation_run(self, request: OpenRun) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                pg_insert(ReconciliationRun)
                .values(
                    id=request.run_id,
                    server=request.server,
                    day=request.day,
                    period_start=request.period_start,
                    period_end=request.period_end,
                    window_seconds=request.window_seconds,
                    match_window_seconds=request.match_window_seconds,
                    status="loading",
                )
                .on_conflict_do_nothing(index_elements=[ReconciliationRun.id])
            )

    @implements(fetch_settlement_reports)
    async def fetch_settlement_reports(self, request: FetchSettlements) -> Stored:
        rows: list[dict[str, object]] = []
        for name in sorted(self._providers):
            for line in await self._providers[name].settlement(request.day):
                if line.kind not in SETTLEMENT_KINDS:
                    alerts.warning(
                        "settlement row %s of %s has an unknown type %r: not reconciled",
                        line.provider_ref,
                        name,
                        line.kind,
                    )
                    continue
                rows.append(
                    {
                        "run_id": request.run_id,
                        "provider": name,
                        "provider_ref": line.provider_ref,
                        "reference": line.reference,
                        "kind": line.kind,
                        "day": line.day,
                        "gross_minor": line.gross.to_minor_units(),
                        "fee_minor": line.fee.to_minor_units(),
                        "net_minor": line.net.to_minor_units(),
                        "currency": line.gross.currency,
                    }
                )
        async with self._sessions.begin() as session:
            await session.execute(
                delete(ReconciliationPspRow).where(ReconciliationPspRow.run_id == request.run_id)
            )
            if rows:
                await session.execute(insert(ReconciliationPspRow), rows)
        return Stored(rows=len(rows))

    @implements(match_reconciliation_run)
    async def match_reconciliation_run(self, request: RunRef) -> Matched:
        try:
            result = await match_run(self._sessions, request.run_id)
        except LookupError as missing:
            raise ApplicationError(str(missing), type="NoSuchRun", non_retryable=True) from None
        return Matched(matched=result.matched, breaks=len(result.breaks), cleared=result.cleared)

    @implements(file_reconciliation_cases)
    async def file_reconciliation_cases(self, request: FileCases) -> FiledCases:
        async with self._sessions.begin() as session:
            run = await session.get(ReconciliationRun, request.run_id, with_for_update=True)
            if run is None:
                raise ApplicationError(
                    f"no reconciliation run {request.run_id}", type="NoSuchRun", non_retryable=True
                )
            return await self._file(session, run, request)

    async def _file(
        self, session: AsyncSession, run: ReconciliationRun, request: FileCases
    ) -> FiledCases:
        now = self._now()
        actor = system_actor()
        breaks = await breaks_of_run(session, run.id)
        keys = sorted({found.key for found in breaks} | set(request.cleared))
        cases = await open_cases_by_key(session, run.server, keys, lock=True)
        opened = carried = closed = alerted = 0
        # Timing cases of an earlier day whose other side this run found: closed by the run.
        for key in sorted(set(request.cleared)):
            case = cases.get(key)
            if case is None or case.type != CUT_OFF_TIMING or case.first_run_id == run.id:
                continue
            case.status = "auto_closed"
            case.closed_at = now
            case.resolution = f"cleared by the run of {run.day.isoformat()} ({run.id})"
            closed += 1
            record(
                session,
                actor,
                Change(
                    "reconciliation_case.auto_closed",
                    "reconciliation_case",
                    str(case.id),
                    before={"status": "open"},
                    after={"status": "auto_closed", "run_id": str(run.id)},
                ),
            )
            del cases[key]
        threshold = request.alert_above
        for found in breaks:
            case = cases.get(found.key)
            if case is not None:
                if case.last_run_id != run.id:
                    carried += 1
                case.last_run_id = run.id
                case.last_day = max(case.last_day, run.day)
                case.type, case.detail = found.type, found.detail
                case.amount_minor, case.currency = found.amount_minor, found.currency
                continue
            big = Decimal(abs(found.amount_minor)).scaleb(-MINOR_UNITS.get(found.currency, 2))
            case = ReconciliationCase(
                id=uuid.uuid4(),
                server=run.server,
                key=found.key,
                type=found.type,
                status="open",
                amount_minor=found.amount_minor,
                currency=found.currency,
                reference=found.reference,
                login=found.login,
                deal=found.deal,
                provider=found.provider,
                detail=found.detail,
                first_run_id=run.id,
                last_run_id=run.id,
                first_day=run.day,
                last_day=run.day,
                alerted=big >= threshold,
            )
            session.add(case)
            cases[found.key] = case
            opened += 1
            if case.alerted:
                alerted += 1
                alerts.warning(
                    "reconciliation break on %s, day %s: %s %s %s (%s)",
                    run.server,
                    run.day,
                    found.type,
                    big,
                    found.currency,
                    found.key,
                )
            record(
                session,
                actor,
                Change(
                    "reconciliation_case.opened",
                    "reconciliation_case",
                    str(case.id),
                    after={
                        "type": found.type,
                        "key": found.key,
                        "amount_minor": found.amount_minor,
                        "currency": found.currency,
                        "alerted": case.alerted,
                    },
                ),
            )
        return FiledCases(opened=opened, carried=carried, auto_closed=closed, alerted=alerted)


class ReconciliationMt5Steps:
    """One MT5 server's side of the run (registered on that server's task queue)."""

    def __init__(
        self, server: str, sessions: async_sessionmaker[AsyncSession], gateway: Mt5Gateway
    ) -> None:
        self._server = server
        self._sessions = sessions
        self._gateway = gateway

    @implements(fetch_reconciliation_deals)
    async def fetch_reconciliation_deals(self, request: FetchDeals) -> Stored:
        if request.server != self._server:
            raise ApplicationError(
                f"deals of {request.server} asked of {self._server}",
                type="WrongServer",
                non_retryable=True,
            )
        try:
            records = await self._records(request.since, request.until)
        except Mt5Error as error:
            raise_for_temporal(error)
        offset = timedelta(seconds=request.server_clock_offset)
        async with self._sessions.begin() as session:
            accounts = await session.execute(
                select(Mt5Account.login, Mt5Account.currency).where(
                    Mt5Account.server == self._server
                )
            )
            currencies: dict[int, str] = {login: currency for login, currency in accounts}
            rows: dict[int, dict[str, object]] = {}
            for deal in records:
                action = int(deal.get("Action", 0))
                if action in TRADE_ACTIONS:
                    continue
                login = int(deal["Login"])
                currency = str(deal.get("Currency") or "") or currencies.get(
                    login, request.default_currency
                )
                ticket = int(deal["Deal"])
                rows[ticket] = {
                    "run_id": request.run_id,
                    "deal": ticket,
                    "login": login,
                    "time": datetime.fromtimestamp(int(deal.get("Time", 0)), UTC) - offset,
                    "action": action,
                    "amount_minor": minor_units(str(deal.get("Profit", "0")), currency),
                    "currency": currency,
                    "comment": str(deal.get("Comment", "")),
                }
            await session.execute(
                delete(ReconciliationMt5Deal).where(ReconciliationMt5Deal.run_id == request.run_id)
            )
            if rows:
                await session.execute(insert(ReconciliationMt5Deal), list(rows.values()))
        return Stored(rows=len(rows))

    async def _records(self, since: datetime, until: datetime) -> list[dict[str, str]]:
        """Every deal of the server in [since, until]: a full answer is read again in halves."""
        found = await self._gateway.deal_records("*", since, until)
        if len(found) < MAX_DEAL_BATCH or until - since <= SMALLEST_WINDOW:
            return found
        middle = since + (until - since) / 2
        return [*await self._records(since, middle), *await self._records(middle, until)]
