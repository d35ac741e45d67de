"""The scheduled reconciliation's steps (contracts/reconciliation.py): the run's row, its MT5 and
processor snapshots, the account balances as of the period's end, the payments waiting on a
processor, the matching (`match_run`: the three sides read from the database and matched by
`domain.reconciliation`, the code `python -m reconciliation.check` runs, then the waiting
payments classified; its breaks stored with the run), the break cases finance works, the alert
mail to finance and the run's stored report (docs/reconciliation.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.mail import message_id
from activities.mt5_errors import raise_for_temporal
from contracts.reconciliation import (
    FetchBalances,
    FetchDeals,
    FetchSettlements,
    FileCases,
    FiledCases,
    MailedAlerts,
    Matched,
    MatchRun,
    OpenRun,
    RunRef,
    SnapshotWaiting,
    Stored,
    StoredReport,
    fetch_reconciliation_balances,
    fetch_reconciliation_deals,
    fetch_settlement_reports,
    file_reconciliation_cases,
    mail_reconciliation_alerts,
    match_reconciliation_run,
    open_reconciliation_run,
    snapshot_waiting_payments,
    store_reconciliation_report,
)
from contracts.steps import implements
from db.audit import Change, record, system_actor
from db.models import IngestionState, Mt5Account
from db.models.reconciliation import (
    ReconciliationBalance,
    ReconciliationBreak,
    ReconciliationMt5Deal,
    ReconciliationPspRow,
    ReconciliationRun,
    ReconciliationWaiting,
)
from db.models.reconciliation_cases import ReconciliationCase
from db.queries import reconciliation_cases as case_queries
from db.queries.reconciliation import (
    accounts_to_check,
    deal_sums,
    payment_references,
    run_period,
    run_sides,
    store_breaks,
    waiting_of_run,
    waiting_payments,
)
from db.queries.reconciliation_cases import (
    CUT_OFF_TIMING,
    balanced_cases,
    breaks_of_run,
    open_cases_by_key,
)
from domain.money import MINOR_UNITS, Money
from domain.reconciliation.matching import reconcile
from domain.reconciliation.records import SETTLEMENT_KINDS, TRADE_ACTIONS, Result
from domain.reconciliation.waiting import classify_waiting
from mailer.smtp import Mailer, MailRejected, OutgoingMail
from mt5_adapter.errors import Mt5Error
from mt5_adapter.gateway import Mt5Gateway
from psp_adapter.gateway import PaymentProvider
from reports.reconciliation import build_report, render_csv, render_pdf
from storage.documents import DocumentStore

# The alert: operations (and finance) watch this logger, a WARNING per new break at or above
# the threshold; the console shows the same cases as alerted.
alerts = logging.getLogger("brokerflow.reconciliation")
# `deal/get_batch` answers at most this many deals (mt5_adapter.webapi.MAX_DEAL_BATCH): a full
# answer means more in the window, which is then read in halves.
MAX_DEAL_BATCH = 100_000
SMALLEST_WINDOW = timedelta(seconds=1)
# The balances read at R are rolled back with the ingested deals after the period's end, so
# trade ingestion must have polled this long after R (its idle heartbeat is 15 s); the step
# waits for it at most INGESTION_WAIT, then leaves the balances unchecked (the run goes on).
INGESTION_MARGIN = timedelta(seconds=30)
INGESTION_WAIT = timedelta(seconds=120)
INGESTION_RECHECK_SECONDS = 2.0
# Settlement rows that quote the transfer reference the processor handed out for a payment
# (BankCo's `incoming`), not BrokerFlow's payment reference.
TRANSFER_KINDS = frozenset({"incoming"})
# Where a run's report is stored (the API serves it from there).
REPORT_KEY = "reconciliation/runs/{id}/report.{format}"
CONSOLE_CASES = "/console/reconciliation/cases"


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def match_run(
    sessions: async_sessionmaker[AsyncSession],
    run_id: uuid.UUID,
    *,
    as_of: datetime | None = None,
    stuck_after: timedelta = timedelta(days=1),
) -> Result:
    """Match run `run_id` and store its breaks (replacing those of an earlier attempt), in one
    transaction. With `as_of`, the run's waiting payments are classified too
    (`domain.reconciliation.waiting`)."""
    async with sessions.begin() as session:
        run = await session.get(ReconciliationRun, run_id, with_for_update=True)
        if run is None:
            raise LookupError(f"no reconciliation run {run_id}")
        sides = await run_sides(session, run)
        result = reconcile(run_period(run), sides)
        if as_of is not None:
            waiting = await waiting_of_run(session, run.id)
            result = classify_waiting(
                result, sides.psp, waiting, as_of=as_of, stuck_after=stuck_after
            )
        await session.execute(
            delete(ReconciliationBreak).where(ReconciliationBreak.run_id == run.id)
        )
        await store_breaks(session, run.id, result.breaks)
        run.status = "matched"
        run.matched = result.matched
        run.breaks = len(result.breaks)
        run.finished_at = datetime.now(UTC)
    return result


def _auto_close(
    session: AsyncSession,
    case: ReconciliationCase,
    run: ReconciliationRun,
    now: datetime,
    resolution: str,
    **why: object,
) -> None:
    """Close `case` for `run` (a timing break cleared, an account found balanced), with the
    resolution saying which run closed it, and its system audit row."""
    before = case.status
    case.status = "auto_closed"
    case.closed_at = now
    case.resolution = resolution
    record(
        session,
        system_actor(),
        Change(
            "reconciliation_case.auto_closed",
            "reconciliation_case",
            str(case.id),
            before={"status": before},
            after={"status": "auto_closed", "run_id": str(run.id), **why},
        ),
    )


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
        mailer: Mailer | None = None,
        sender: str = "BrokerFlow <noreply@brokerflow.local>",
        documents: DocumentStore | None = None,
        console_url: str = "",
    ) -> None:
        self._sessions = sessions
        self._providers = providers
        self._now = now
        self._mailer = mailer
        self._sender = sender
        self._documents = documents
        self._console_url = console_url.rstrip("/")

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
        """Each processor's report of the day, stored as the run's snapshot. A row whose
        reference is the transfer reference a processor handed out for a payment (BankCo's
        `incoming` rows quote BankCo's own deposit reference, `payments.transfer_reference`)
        is stored under that payment's BrokerFlow reference, the one the ledger's entries are
        keyed by (`<reference>:received`)."""
        rows: list[dict[str, object]] = []
        for name in sorted(self._providers):
            lines = await self._providers[name].settlement(request.day)
            async with self._sessions() as session:
                quoted = {line.reference for line in lines if line.kind in TRANSFER_KINDS}
                ours = await payment_references(session, name, quoted)
            for line in lines:
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
                        "reference": ours.get(line.reference, line.reference),
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

    @implements(snapshot_waiting_payments)
    async def snapshot_waiting_payments(self, request: SnapshotWaiting) -> Stored:
        async with self._sessions.begin() as session:
            rows = [
                {"run_id": request.run_id, **payment._asdict()}
                for payment in await waiting_payments(session)
            ]
            await session.execute(
                delete(ReconciliationWaiting).where(ReconciliationWaiting.run_id == request.run_id)
            )
            if rows:
                await session.execute(insert(ReconciliationWaiting), rows)
        return Stored(rows=len(rows))

    @implements(match_reconciliation_run)
    async def match_reconciliation_run(self, request: MatchRun) -> Matched:
        try:
            result = await match_run(
                self._sessions,
                request.run_id,
                as_of=request.as_of,
                stuck_after=timedelta(seconds=request.stuck_after_seconds),
            )
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
        auto_closed: list[uuid.UUID] = []
        # Timing cases of an earlier day whose other side this run found: closed by the run.
        for key in sorted(set(request.cleared)):
            case = cases.get(key)
            if case is None or case.type != CUT_OFF_TIMING or case.first_run_id == run.id:
                continue
            _auto_close(
                session, case, run, now, f"cleared by the run of {run.day.isoformat()} ({run.id})"
            )
            closed += 1
            auto_closed.append(case.id)
            del cases[key]
        # Balance cases of an earlier run whose login this run checked and found balanced.
        for case in await balanced_cases(session, run, lock=True):
            _auto_close(
                session,
                case,
                run,
                now,
                f"balanced in the run of {run.day.isoformat()} ({run.id}):"
                " MT5 less trading equals the ledger's mirror",
                balanced=True,
            )
            closed += 1
            auto_closed.append(case.id)
        # An entry still waiting for its second officer on a case closed here can no longer
        # be approved (docs/reconciliation.md, "Proposals").
        await case_queries.lapse_waiting_proposals(
            session,
            auto_closed,
            now,
            f"the case was auto-closed by the run of {run.day} ({run.id})",
        )
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

    @implements(store_reconciliation_report)
    async def store_reconciliation_report(self, request: RunRef) -> StoredReport:
        """The report as the run ended, rendered and stored once under the run's keys (a
        retried attempt finds them stored); the run points at them."""
        if self._documents is None:
            alerts.warning("reconciliation run %s: no document store, report not stored",
                           request.run_id)  # fmt: skip
            return StoredReport()
        pdf_key = REPORT_KEY.format(id=request.run_id, format="pdf")
        csv_key = REPORT_KEY.format(id=request.run_id, format="csv")
        async with self._sessions() as session:
            run = await session.get(ReconciliationRun, request.run_id)
            if run is None:
                raise ApplicationError(
                    f"no reconciliation run {request.run_id}", type="NoSuchRun", non_retryable=True
                )
            inputs = await case_queries.report_inputs(session, run)
            report = build_report(
                inputs.run,
                inputs.breaks,
                inputs.cases,
                money=_money_text,
                signed_off=inputs.signed_off,
                deals=inputs.deals,
                settlement_rows=inputs.settlement_rows,
                balances=inputs.balances,
                now=self._now(),
            )
        if not await self._documents.exists(pdf_key):
            await self._documents.put(pdf_key, await asyncio.to_thread(render_pdf, report))
        if not await self._documents.exists(csv_key):
            await self._documents.put(csv_key, render_csv(report).encode())
        async with self._sessions.begin() as session:
            stored = await session.get(ReconciliationRun, request.run_id, with_for_update=True)
            if stored is not None and stored.report_pdf_key is None:
                stored.report_pdf_key, stored.report_csv_key = pdf_key, csv_key
        return StoredReport(pdf_key=pdf_key, csv_key=csv_key)

    @implements(mail_reconciliation_alerts)
    async def mail_reconciliation_alerts(self, request: RunRef) -> MailedAlerts:
        """One mail to each active finance officer listing the new alerted cases of the run
        (the same Message-ID on every attempt); a recipient refused for good is logged and
        skipped: the cases and the logger's WARNING stand without the mail."""
        if self._mailer is None:
            alerts.warning("reconciliation alerts of run %s not mailed: no mailer", request.run_id)
            return MailedAlerts()
        async with self._sessions() as session:
            run = await session.get(ReconciliationRun, request.run_id)
            cases = await case_queries.alerted_cases_opened_by(session, request.run_id)
            recipients = await case_queries.finance_emails(session)
        if run is None or not cases or not recipients:
            return MailedAlerts(cases=len(cases))
        lines = [
            f"{case.type}  {_money_text(case.amount_minor, case.currency)} {case.currency}"
            f"  {case.key}\n    {case.detail}\n    {self._console_url}{CONSOLE_CASES}/{case.id}"
            for case in cases
        ]
        text = (
            f"The reconciliation of {run.server} for {run.day.isoformat()} found"
            f" {len(cases)} new break(s) at or above the alert threshold:\n\n"
            + "\n".join(lines)
            + f"\n\nWork them in the console: {self._console_url}{CONSOLE_CASES}"
            f"?run_id={run.id}\n"
        )
        sent = 0
        for to in recipients:
            mail = OutgoingMail(
                to=to,
                subject=f"BrokerFlow reconciliation: {len(cases)} new break(s) on {run.server},"
                f" {run.day.isoformat()}",
                text=text,
                message_id=message_id(f"reconciliation-alert:{run.id}:{to}", self._sender),
            )
            try:
                await self._mailer.send(mail)
            except MailRejected as refused:
                alerts.warning("reconciliation alert mail to %s refused: %s", to, refused)
                continue
            sent += 1
        return MailedAlerts(recipients=sent, cases=len(cases))


def _money_text(minor: int, currency: str) -> str:
    return format(Money.from_minor_units(minor, currency).amount, "f")


class ReconciliationMt5Steps:
    """One MT5 server's side of the run (registered on that server's task queue)."""

    def __init__(
        self,
        server: str,
        sessions: async_sessionmaker[AsyncSession],
        gateway: Mt5Gateway,
        *,
        now: Callable[[], datetime] = _utc_now,
        ingestion_wait: timedelta = INGESTION_WAIT,
    ) -> None:
        self._server = server
        self._sessions = sessions
        self._gateway = gateway
        self._now = now
        self._ingestion_wait = ingestion_wait

    def _refuse_other(self, server: str) -> None:
        if server != self._server:
            raise ApplicationError(
                f"the run of {server} asked of {self._server}",
                type="WrongServer",
                non_retryable=True,
            )

    @implements(fetch_reconciliation_balances)
    async def fetch_reconciliation_balances(self, request: FetchBalances) -> Stored:
        """Each account's MT5 balance as of the period's end: the balance `user/get_batch`
        answers at R, less the ingested deals of (end, R] (Profit + Commission + Swap + Fee);
        and the trade deals' same sum up to the end (what trading changed). Unchecked (the
        run's `balances_note` says why) when trade ingestion has not polled past R."""
        self._refuse_other(request.server)
        try:
            users = await self._gateway.records("user/get_batch", {"group": "*"})
        except Mt5Error as error:
            raise_for_temporal(error)
        read_at = self._now()
        polled = await self._ingested_since(read_at + INGESTION_MARGIN)
        async with self._sessions.begin() as session:
            run = await session.get(ReconciliationRun, request.run_id, with_for_update=True)
            if run is None:
                raise ApplicationError(
                    f"no reconciliation run {request.run_id}", type="NoSuchRun", non_retryable=True
                )
            await session.execute(
                delete(ReconciliationBalance).where(ReconciliationBalance.run_id == run.id)
            )
            if polled is None or polled < read_at + INGESTION_MARGIN:
                run.balances_note = (
                    f"balances not checked: trade ingestion of {self._server} last polled"
                    f" {'never' if polled is None else f'{polled:%Y-%m-%d %H:%M:%S} UTC'},"
                    f" before the balances read at {read_at:%Y-%m-%d %H:%M:%S} UTC"
                )
                alerts.warning("reconciliation run %s: %s", run.id, run.balances_note)
                return Stored(rows=0)
            run.balances_note = None
            balances = {
                int(user["Login"]): Decimal(str(user.get("Balance") or "0")) for user in users
            }
            accounts = await accounts_to_check(session, self._server, request.default_currency)
            sums = await deal_sums(
                session, self._server, list(accounts), request.period_end, read_at, TRADE_ACTIONS
            )
            rows = []
            for login, currency in sorted(accounts.items()):
                after_end, trading = sums.get(login, (Decimal(0), Decimal(0)))
                rows.append(
                    {
                        "run_id": run.id,
                        "login": login,
                        "currency": currency,
                        "mt5_minor": minor_units(
                            balances.get(login, Decimal(0)) - after_end, currency
                        ),
                        "trading_minor": minor_units(trading, currency),
                        "read_at": read_at,
                    }
                )
            if rows:
                await session.execute(insert(ReconciliationBalance), rows)
        return Stored(rows=len(rows))

    async def _ingested_since(self, moment: datetime) -> datetime | None:
        """Trade ingestion's last poll of this server, once it is at or after `moment` (waited
        for up to the step's ingestion wait; the last seen if it never got there; None at once
        when the server's deals were never ingested)."""
        deadline = time.monotonic() + self._ingestion_wait.total_seconds()
        while True:
            async with self._sessions() as session:
                polled = await session.scalar(
                    select(IngestionState.last_poll_at).where(IngestionState.server == self._server)
                )
            if polled is None or polled >= moment or time.monotonic() >= deadline:
                return polled
            await asyncio.sleep(INGESTION_RECHECK_SECONDS)

    @implements(fetch_reconciliation_deals)
    async def fetch_reconciliation_deals(self, request: FetchDeals) -> Stored:
        self._refuse_other(request.server)
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
