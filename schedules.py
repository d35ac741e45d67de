"""Temporal Schedules BrokerFlow relies on, created or brought up to date by the worker at
start-up (so a change of `settings.kyc` reaches the next scheduled run).

    ReKycSweep  daily at 03:00 UTC (`rekyc-sweep-daily`): re-KYC cases for documents running out.
"""

from __future__ import annotations

import logging
from datetime import timedelta

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

from contracts import TASK_QUEUE
from contracts.rekyc_sweep import REKYC_SWEEP, REKYC_SWEEP_SCHEDULE, ReKycSweepInput
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


async def ensure_schedules(client: Client, settings: Settings) -> None:
    """Create each schedule, or update it to what the settings say now if it exists."""
    schedule = rekyc_sweep_schedule(settings)
    try:
        await client.create_schedule(REKYC_SWEEP_SCHEDULE, schedule)
        log.info("schedule %s created", REKYC_SWEEP_SCHEDULE)
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

    await client.get_schedule_handle(REKYC_SWEEP_SCHEDULE).update(updated)
    log.info("schedule %s updated", REKYC_SWEEP_SCHEDULE)
