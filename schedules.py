"""Temporal Schedules BrokerFlow relies on, created or brought up to date by the worker at
start-up (so a change of `settings.kyc` reaches the next scheduled run).

    ReKycSweep  daily at 03:00 UTC (`rekyc-sweep-daily`): re-KYC cases for documents running out.
    IbPayoutCycle  daily, weekly (Mondays) and monthly (the 1st) at 01:00 UTC
                   (`ib-payouts-<frequency>`): the IBs of that frequency are paid their last period.

    FxFeed  every `fx_feed.interval` (`fx-feed`): the configured MT5 symbols' last quotes
            stored as FX rates (deleted when `fx_feed.enabled` is off; not made in tests).
    RiskExposure  every `risk.interval`, per MT5 server (`risk-exposure-<server>`): a point of
            the exposure series and the risk alerts (deleted when `risk.enabled` is off; not
            made in tests).

    ClientProfiling  every `profiling.interval`, per MT5 server (`client-profiling-<server>`):
            each account's profile over the last `profiling.window` (deleted when
            `profiling.enabled` is off; not made in tests).

    Analytics  every `analytics.interval` (`analytics`): the reporting aggregates of every
            server refreshed from its deals' watermark (deleted when `analytics.enabled` is
            off; not made in tests).
    Reconciliation  per MT5 server, daily `reconciliation.delay` after the cut-off on the
                    server's clock (`reconciliation-daily-<server>`), and hourly when
                    `reconciliation.hourly` (`reconciliation-hourly-<server>`, the day so far);
                    not made in tests (they start the runs they need).

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
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from contracts import TASK_QUEUE
from contracts.analytics import ANALYTICS, ANALYTICS_SCHEDULE, AnalyticsInput
from contracts.client_profiling import (
    CLIENT_PROFILING,
    ClientProfilingInput,
    client_profiling_schedule_id,
)
from contracts.dealer_revenue import DEALER_REVENUE, DEALER_REVENUE_SCHEDULE, DealerRevenueInput
from contracts.fx_feed import (
    FX_FEED,
    FX_FEED_RUN_TIMEOUT,
    FX_FEED_SCHEDULE,
    FeedSymbol,
    FxFeedInput,
)
from contracts.ib_payout import (
    IB_PAYOUT_CYCLE,
    PayoutCycleInput,
    PayoutFrequency,
    payout_schedule_id,
)
from contracts.reconciliation import (
    RECONCILIATION,
    RECONCILIATION_RUN_TIMEOUT,
    ReconciliationInput,
    daily_schedule_id,
    hourly_schedule_id,
)
from contracts.rekyc_sweep import REKYC_SWEEP, REKYC_SWEEP_SCHEDULE, ReKycSweepInput
from contracts.risk_exposure import (
    RISK_EXPOSURE,
    RiskExposureInput,
    risk_exposure_schedule_id,
)
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
    the four-eyes threshold of `settings.ib` and each MT5 server's clock offset."""
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
                server_clock_offsets={
                    s.name: settings.server_clock_offset_of(s.name) for s in settings.mt5_fleet()
                },
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


def fx_feed_schedule(settings: Settings) -> Schedule:
    """The FX feed every `fx_feed.interval`, with the symbols, the server's clock offset and
    the maximum age of `settings`. A run missed while Temporal was down is not caught up: the
    next one reads today's quotes."""
    feed = settings.fx_feed
    server = feed.server or settings.mt5.name
    if server not in {s.name for s in settings.mt5_fleet()}:
        raise ValueError(f"fx_feed.server {server!r} is not a configured MT5 server")
    return Schedule(
        action=ScheduleActionStartWorkflow(
            FX_FEED.name,
            FxFeedInput(
                server=server,
                symbols=[FeedSymbol(symbol=s, base=b, quote=q) for s, b, q in feed.pairs()],
                server_clock_offset=settings.server_clock_offset_of(server),
                max_age=settings.payments.fx_rate_max_age,
            ),
            id=FX_FEED_SCHEDULE,
            task_queue=TASK_QUEUE,
            execution_timeout=FX_FEED_RUN_TIMEOUT,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=feed.interval)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=feed.interval),
    )


def fx_feed_runs(settings: Settings) -> bool:
    """Tests and benches read the quotes they need themselves: a feed of the simulator's
    quotes would move the rates their conversions use."""
    return settings.fx_feed.enabled and bool(settings.fx_feed.symbols) and settings.env != "test"


def risk_exposure_schedule(server: str, settings: Settings) -> Schedule:
    """One server's live exposure every `risk.interval`. Overlapping runs are skipped and a
    missed run is not caught up: the next point reads the state as it is then."""
    risk = settings.risk
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RISK_EXPOSURE.name,
            RiskExposureInput(server=server, currency=risk.currency, retention=risk.retention),
            id=risk_exposure_schedule_id(server),
            task_queue=TASK_QUEUE,
            execution_timeout=max(risk.interval * 5, timedelta(minutes=1)),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=risk.interval)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=risk.interval),
    )


def risk_exposure_runs(settings: Settings) -> bool:
    """Tests compute the points they need themselves."""
    return settings.risk.enabled and settings.env != "test"


def client_profiling_schedule(server: str, settings: Settings) -> Schedule:
    """One server's client profiles every `profiling.interval`, over the last
    `profiling.window`. Overlapping runs are skipped; a missed run is not caught up."""
    profiling = settings.profiling
    return Schedule(
        action=ScheduleActionStartWorkflow(
            CLIENT_PROFILING.name,
            ClientProfilingInput(
                server=server,
                window=profiling.window,
                max_ticks_per_symbol=profiling.max_ticks_per_symbol,
            ),
            id=client_profiling_schedule_id(server),
            task_queue=TASK_QUEUE,
            execution_timeout=max(profiling.interval, timedelta(minutes=15)),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=profiling.interval)]),
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP, catchup_window=profiling.interval
        ),
    )


def client_profiling_runs(settings: Settings) -> bool:
    """Tests profile the deals they wrote themselves."""
    return settings.profiling.enabled and settings.env != "test"


def reconciliation_input(settings: Settings, server: str, *, today: bool) -> ReconciliationInput:
    rules = settings.reconciliation
    return ReconciliationInput(
        server=server,
        today=today,
        cut_off=rules.cut_off,
        server_clock_offset=settings.server_clock_offset_of(server),
        window_seconds=rules.cut_off_window_seconds,
        match_window_seconds=rules.match_window_seconds,
        alert_above=rules.alert_above,
        default_currency=rules.default_currency,
        stuck_after_seconds=int(rules.stuck_after.total_seconds()),
    )


def reconciliation_schedule(settings: Settings, server: str, *, hourly: bool) -> Schedule:
    """`server`'s daily run, `reconciliation.delay` after the cut-off on the server's clock
    (in UTC: the cut-off less the clock offset), or its hourly run of the day so far."""
    rules = settings.reconciliation
    if hourly:
        spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))])
        schedule_id = hourly_schedule_id(server)
    else:
        cut_off = timedelta(hours=rules.cut_off.hour, minutes=rules.cut_off.minute)
        at = cut_off + rules.delay - timedelta(seconds=settings.server_clock_offset_of(server))
        minute = int(at.total_seconds() // 60) % (24 * 60)
        spec = ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    hour=[ScheduleRange(minute // 60)],
                    minute=[ScheduleRange(minute % 60)],
                    second=[ScheduleRange(0)],
                )
            ],
            time_zone_name="UTC",
        )
        schedule_id = daily_schedule_id(server)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RECONCILIATION.name,
            reconciliation_input(settings, server, today=hourly),
            id=schedule_id,
            task_queue=TASK_QUEUE,
            execution_timeout=RECONCILIATION_RUN_TIMEOUT,
        ),
        spec=spec,
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP,
            catchup_window=timedelta(hours=1) if hourly else timedelta(hours=12),
        ),
    )


def reconciliation_schedules(settings: Settings) -> dict[str, Schedule]:
    """Every server's reconciliation schedules the settings want (none in tests)."""
    rules = settings.reconciliation
    if not rules.enabled or settings.env == "test":
        return {}
    wanted: dict[str, Schedule] = {}
    for server in settings.mt5_fleet():
        wanted[daily_schedule_id(server.name)] = reconciliation_schedule(
            settings, server.name, hourly=False
        )
        if rules.hourly:
            wanted[hourly_schedule_id(server.name)] = reconciliation_schedule(
                settings, server.name, hourly=True
            )
    return wanted


def analytics_schedule(settings: Settings) -> Schedule:
    """The reporting aggregates of every server every `analytics.interval`, from each server's
    watermark on (docs/reporting.md). Overlapping runs are skipped; the next run catches up."""
    every = settings.analytics.interval
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ANALYTICS.name,
            AnalyticsInput(servers=[s.name for s in settings.mt5_fleet()]),
            id=ANALYTICS_SCHEDULE,
            task_queue=TASK_QUEUE,
            execution_timeout=max(every * 5, timedelta(minutes=15)),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=every),
    )


def dealer_revenue_schedule(settings: Settings) -> Schedule:
    """Every server's deals since its revenue cursor, every `analytics.revenue_interval`
    (docs/revenue.md). Overlapping runs are skipped; the next run catches up."""
    every = settings.analytics.revenue_interval
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DEALER_REVENUE.name,
            DealerRevenueInput(),
            id=DEALER_REVENUE_SCHEDULE,
            task_queue=TASK_QUEUE,
            execution_timeout=max(every * 5, timedelta(minutes=15)),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=every),
    )


def analytics_runs(settings: Settings) -> bool:
    """Tests refresh the aggregates they read themselves."""
    return settings.analytics.enabled and settings.env != "test"


def all_schedules(settings: Settings) -> dict[str, Schedule]:
    return {
        **({ANALYTICS_SCHEDULE: analytics_schedule(settings)} if analytics_runs(settings) else {}),
        **(
            {DEALER_REVENUE_SCHEDULE: dealer_revenue_schedule(settings)}
            if analytics_runs(settings)
            else {}
        ),
        REKYC_SWEEP_SCHEDULE: rekyc_sweep_schedule(settings),
        **{payout_schedule_id(f): ib_payout_schedule(f, settings) for f in PayoutFrequency},
        **({FX_FEED_SCHEDULE: fx_feed_schedule(settings)} if fx_feed_runs(settings) else {}),
        **reconciliation_schedules(settings),
        **(
            {
                risk_exposure_schedule_id(s.name): risk_exposure_schedule(s.name, settings)
                for s in settings.mt5_fleet()
            }
            if risk_exposure_runs(settings)
            else {}
        ),
        **(
            {
                client_profiling_schedule_id(s.name): client_profiling_schedule(s.name, settings)
                for s in settings.mt5_fleet()
            }
            if client_profiling_runs(settings)
            else {}
        ),
    }


async def ensure_schedules(client: Client, settings: Settings) -> None:
    """Create each schedule, or update it to what the settings say now if it exists."""
    for schedule_id, schedule in all_schedules(settings).items():
        await _ensure(client, schedule_id, schedule)
    if settings.env != "test" and not fx_feed_runs(settings):
        await _retire(client, FX_FEED_SCHEDULE)
    if settings.env != "test":  # reconciliation schedules the settings no longer want
        wanted = reconciliation_schedules(settings)
        for server in settings.mt5_fleet():
            for schedule_id in (daily_schedule_id(server.name), hourly_schedule_id(server.name)):
                if schedule_id not in wanted:
                    await _retire(client, schedule_id)
    if settings.env != "test" and not analytics_runs(settings):
        await _retire(client, ANALYTICS_SCHEDULE)
        await _retire(client, DEALER_REVENUE_SCHEDULE)
    if settings.env != "test" and not risk_exposure_runs(settings):
        for server in settings.mt5_fleet():
            await _retire(client, risk_exposure_schedule_id(server.name))
    if settings.env != "test" and not client_profiling_runs(settings):
        for server in settings.mt5_fleet():
            await _retire(client, client_profiling_schedule_id(server.name))
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


async def _retire(client: Client, schedule_id: str) -> None:
    """Delete a schedule the settings no longer want, if it exists."""
    try:
        await client.get_schedule_handle(schedule_id).delete()
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        return
    log.info("schedule %s deleted", schedule_id)


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
