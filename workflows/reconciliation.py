"""The three-way reconciliation of one MT5 server's broker day (docs/reconciliation.md):

1. open the run (its day and period, from the cut-off on the server's clock);
2. store the day's MT5 balance deals (`deal/get_batch`, on the server's own task queue) and each
   processor's settlement report as the run's snapshot, the ledger's side being its postings;
3. match (`domain.reconciliation`) and store the breaks;
4. file the breaks as cases, auto-close the timing cases this run clears, alert finance about
   new breaks at or above the threshold.

Runs started on this code (`BALANCES_AND_REPORT_PATCH`) also snapshot the server's account
balances as of the period's end (on the server's queue) and the payments waiting on a
processor, classify lost webhooks and stuck payouts, mail finance the new alerted cases and
store the run's report (PDF, CSV).

Every step is idempotent (a snapshot is replaced whole, breaks are replaced, cases follow keys),
so a retried step or a run started again for the same day changes nothing twice.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from contracts import reconciliation as steps
    from contracts.reconciliation import (
        BALANCES_AND_REPORT_PATCH,
        RECONCILIATION,
        FetchBalances,
        FetchDeals,
        FetchSettlements,
        FileCases,
        MailedAlerts,
        MatchRun,
        OpenRun,
        ReconciliationInput,
        ReconciliationResult,
        RunRef,
        SnapshotWaiting,
        Stored,
        day_to_reconcile,
        period_bounds,
    )

__all__ = ["ReconciliationWorkflow"]


@workflow.defn(name=RECONCILIATION.name)
class ReconciliationWorkflow:
    @workflow.run
    async def run(self, request: ReconciliationInput) -> ReconciliationResult:
        day = request.day or day_to_reconcile(
            workflow.now(), request.cut_off, request.server_clock_offset, today=request.today
        )
        start, end = period_bounds(day, request.cut_off, request.server_clock_offset)
        run_id = workflow.uuid4()
        await steps.open_reconciliation_run(
            OpenRun(
                run_id=run_id,
                server=request.server,
                day=day,
                period_start=start,
                period_end=end,
                window_seconds=request.window_seconds,
                match_window_seconds=request.match_window_seconds,
            )
        )
        # The deals a cut-off and a match window beyond both ends: a pair across the cut-off
        # is matched (and its timing break cleared), never reported.
        margin = timedelta(seconds=request.window_seconds + request.match_window_seconds)
        deals = await steps.fetch_reconciliation_deals(
            request.server,
            FetchDeals(
                run_id=run_id,
                server=request.server,
                since=start - margin,
                until=end + margin,
                server_clock_offset=request.server_clock_offset,
                default_currency=request.default_currency,
            ),
        )
        full = workflow.patched(BALANCES_AND_REPORT_PATCH)
        balances = Stored(rows=0)
        if full:
            balances = await steps.fetch_reconciliation_balances(
                request.server,
                FetchBalances(
                    run_id=run_id,
                    server=request.server,
                    period_end=end,
                    default_currency=request.default_currency,
                ),
            )
        rows = await steps.fetch_settlement_reports(FetchSettlements(run_id=run_id, day=day))
        if full:
            await steps.snapshot_waiting_payments(SnapshotWaiting(run_id=run_id))
        matched = await steps.match_reconciliation_run(
            MatchRun(
                run_id=run_id,
                as_of=workflow.now() if full else None,
                stuck_after_seconds=request.stuck_after_seconds,
            )
        )
        cases = await steps.file_reconciliation_cases(
            FileCases(run_id=run_id, cleared=matched.cleared, alert_above=request.alert_above)
        )
        mailed = MailedAlerts()
        if full:
            await steps.store_reconciliation_report(RunRef(run_id=run_id))
            if cases.alerted:
                try:
                    mailed = await steps.mail_reconciliation_alerts(RunRef(run_id=run_id))
                except ActivityError as failed:  # the cases and the log line stand without it
                    workflow.logger.warning(
                        "reconciliation alert mail of %s on %s not sent: %s",
                        request.server,
                        day,
                        failed.cause or failed,
                    )
        if cases.alerted:
            workflow.logger.warning(
                "reconciliation of %s on %s: %d new breaks at or above %s",
                request.server,
                day,
                cases.alerted,
                request.alert_above,
            )
        return ReconciliationResult(
            run_id=run_id,
            day=day,
            deals=deals.rows,
            settlement_rows=rows.rows,
            matched=matched.matched,
            breaks=matched.breaks,
            cases_opened=cases.opened,
            cases_auto_closed=cases.auto_closed,
            alerted=cases.alerted,
            balances=balances.rows,
            mailed=mailed.recipients,
        )
