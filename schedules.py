"""Temporal Schedules BrokerFlow relies on, created or brought up to date by the worker at
start-up (so a change of `settings.kyc` reaches the next scheduled run).

    ReKycSweep  daily at 03:00 UTC (`rekyc-sweep-daily`): re-KYC cases for documents running out.
    IbPayoutCycle  daily, weekly (Mondays) and monthly (the 1st) at 01:00 UTC
                   (`ib-payouts-<frequency>`): the IBs of that frequency are paid their last period.

Not a schedule but started here too: each MT5 server's `TradeIngestion` (it runs for ever).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import WorkflowIDConflictPolicy

from contracts import TASK_QUEUE
from contracts.ib_payout import (
    IB_PAYOUT_CYCLE,
    PayoutCycleInput,
    PayoutFrequency,
    payout_schedule_id,
)
from contracts.rekyc_sweep import REKYC_SWEEP, REKYC_SWEEP_SCHEDULE, ReKycSweepInput
from contracts.trade_ingestion import (
    TRADE_INGESTION,
    IngestionInput,
    trade_ingestion_workflow_id,
)
from settings import Settings

log = logging.getLogger("brokerflow.schedules")

REKYC_SWEEP_HOUR_UTC = 3
# A sweep that has not finished in a day is stuck: tomorrow's run takes over.
REKYC_SWEEP_TIMEOUT = timedelta(hours=23)


def rekyc_sweep_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            REKYC_SWEEP.name,
            ReKycSweepInput(sla=settings.kyc.sla()),
            # Temporal appends each run's scheduled time to this id.
            id="rekyc-sweep",
            task_queue=TASK_QUEUE,
            execution_timeout=REKYC_SWEEP_TIMEOUT,
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    hour=[ScheduleRange(REKYC_SWEEP_HOUR_UTC)],
                    minute=[ScheduleRange(0)],
                    second=[ScheduleRange(0)],
                )
            ],
            time_zone_name="UTC",
        ),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(hours=12)
        ),
    )


IB_PAYOUT_HOUR_UTC = 1
IB_PAYOUT_CYCLE_TIMEOUT = timedelta(hours=23)


def ib_payout_schedule(frequency: PayoutFrequency, settings: Settings) -> Schedule:
    """The payout cycle of the IBs paid at `frequency`, shortly after each period ends, with
    the four-eyes threshold and the server clock offset of `settings.ib`."""
    when = ScheduleCalendarSpec(
        hour=[ScheduleRange(IB_PAYOUT_HOUR_UTC)],
        minute=[ScheduleRange(0)],
        second=[ScheduleRange(0)],
        day_of_week=[ScheduleRange(1)] if frequency is PayoutFrequency.WEEKLY else [],
        day_of_month=[ScheduleRange(1)] if frequency is PayoutFrequency.MONTHLY else [],
    )
    return Schedule(
        action=ScheduleActionStartWorkflow(
            IB_PAYOUT_CYCLE.name,
            PayoutCycleInput(
                frequency=frequency,
                server_clock_offset=settings.ib.server_clock_offset,
                four_eyes_above=settings.ib.four_eyes_above,
            ),
            id=payout_schedule_id(frequency),
            task_queue=TASK_QUEUE,
            execution_timeout=IB_PAYOUT_CYCLE_TIMEOUT,
        ),
        spec=ScheduleSpec(calendars=[when], time_zone_name="UTC"),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(hours=12)
        ),
    )


def all_schedules(settings: Settings) -> dict[str, Schedule]:
    return {
        REKYC_SWEEP_SCHEDULE: rekyc_sweep_schedule(settings),
        **{payout_schedule_id(f): ib_payout_schedule(f, settings) for f in PayoutFrequency},
    }


async def ensure_schedules(client: Client, settings: Settings) -> None:
    """Create each schedule, or update it to what the settings say now if it exists."""
    for schedule_id, schedule in all_schedules(settings).items():
        await _ensure(client, schedule_id, schedule)
    if settings.env != "test":  # tests and benches start the ingestion they need themselves
        await ensure_trade_ingestion(client, settings)


async def _ensure(client: Client, schedule_id: str, schedule: Schedule) -> None:
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("schedule %s created", schedule_id)
        return
    except ScheduleAlreadyRunningError:
        pass

    def updated(current: ScheduleUpdateInput) -> ScheduleUpdate:
        # The schedule's own state (paused by an operator, its note) is kept.
        return ScheduleUpdate(
            schedule=Schedule(
                action=schedule.action,
                spec=schedule.spec,
                policy=schedule.policy,
                state=current.description.schedule.state,
            )
        )

    await client.get_schedule_handle(schedule_id).update(updated)
    log.info("schedule %s updated", schedule_id)


# A server never ingested before starts this far back; older deals are a back-fill's.
TRADE_INGESTION_LOOKBACK = timedelta(days=1)


async def ensure_trade_ingestion(client: Client, settings: Settings) -> None:
    """The live deal follower of every MT5 server, started unless it runs (it never ends: it
    continues as new)."""
    start_from = datetime.now(UTC) - TRADE_INGESTION_LOOKBACK
    for server in settings.mt5_fleet():
        await client.start_workflow(
            TRADE_INGESTION.name,
            IngestionInput(server=server.name, start_from=start_from),
            id=trade_ingestion_workflow_id(server.name),
            task_queue=TASK_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
