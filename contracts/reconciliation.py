"""The scheduled three-way reconciliation (`Reconciliation`, one run per MT5 server and broker
day): the day's MT5 balance deals and each processor's settlement report stored as the run's
snapshot, matched against the ledger (`domain.reconciliation`), the breaks filed as cases for
finance (a case follows a break's key from run to run), cases of timing breaks this run clears
auto-closed, and finance alerted about new breaks at or above a threshold.

Started by one Temporal Schedule per server (`reconciliation-daily-<server>`, and
`reconciliation-hourly-<server>` when hourly runs are on), or for any past day by finance
(the back-fill: `POST /v1/reconciliation/runs`, or the console's form). The day is the
broker's: from the cut-off on the server's own clock to the next.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

from pydantic import Field

from contracts import policies
from contracts.process import Process
from contracts.steps import Mt5Step, Step
from domain.frozen import Frozen as Contract

# A run that has not finished in this long is stuck; the next scheduled run takes over.
RECONCILIATION_RUN_TIMEOUT = timedelta(hours=6)
# The workflow's steps added after runs were recorded (balances, the payments waiting on a
# processor, alert mail, the stored report): taken only by runs started on this code.
BALANCES_AND_REPORT_PATCH = "reconciliation-balances-waiting-mail-report"


def daily_schedule_id(server: str) -> str:
    return f"reconciliation-daily-{server}"


def hourly_schedule_id(server: str) -> str:
    return f"reconciliation-hourly-{server}"


def reconciliation_workflow_id(server: str, day: date, tag: str) -> str:
    """A back-fill's id: the server, the day and a tag of the request (each back-fill is a run
    of its own; the schedules' ids get Temporal's own time suffix)."""
    return f"reconciliation-{server}-{day.isoformat()}-{tag}"


def server_zone(offset_seconds: int) -> timezone:
    """The fixed zone of a server whose clock runs `offset_seconds` ahead of UTC."""
    return timezone(timedelta(seconds=offset_seconds))


def period_bounds(day: date, cut_off: time, offset_seconds: int) -> tuple[datetime, datetime]:
    """The broker day `day`: from its cut-off on the server's clock for 24 hours, in UTC."""
    start = datetime.combine(day, cut_off.replace(tzinfo=server_zone(offset_seconds)))
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def day_to_reconcile(now: datetime, cut_off: time, offset_seconds: int, *, today: bool) -> date:
    """The last broker day that ended by `now` (the daily run), or the one running at `now`
    (`today`: an hourly run of the day so far)."""
    local = now.astimezone(server_zone(offset_seconds))
    running = local.date() if local.time() >= cut_off else local.date() - timedelta(days=1)
    return running if today else running - timedelta(days=1)


class ReconciliationInput(Contract):
    """The schedules' argument (written by `schedules.py` from `settings.reconciliation`) and a
    back-fill's (the API's)."""

    server: str
    # None: the day `day_to_reconcile` gives at the run's start.
    day: date | None = None
    # An hourly run: the day so far instead of the last whole day.
    today: bool = False
    cut_off: time = time(0, 0)
    server_clock_offset: int = 0
    window_seconds: int = Field(default=300, ge=0)
    match_window_seconds: int = Field(default=3600, ge=0)
    alert_above: Decimal = Decimal("100")
    default_currency: str = "USD"
    # A payout waiting on its processor longer than this, in no settlement report, is stuck.
    stuck_after_seconds: int = Field(default=86400, ge=0)


class ReconciliationResult(Contract):
    run_id: uuid.UUID
    day: date
    deals: int
    settlement_rows: int
    matched: int
    breaks: int
    cases_opened: int
    cases_auto_closed: int
    alerted: int
    # Accounts whose balance the run checked; alert mails sent (runs of the code before: 0).
    balances: int = 0
    mailed: int = 0


RECONCILIATION = Process("Reconciliation", ReconciliationInput, ReconciliationResult)


# -- step arguments ------------------------------------------------------------------------------


class OpenRun(Contract):
    run_id: uuid.UUID
    server: str
    day: date
    period_start: datetime
    period_end: datetime
    window_seconds: int
    match_window_seconds: int


class FetchDeals(Contract):
    """The server's balance deals in [since, until) (UTC) stored as run `run_id`'s MT5 side;
    `server_clock_offset` reads their `Time`, `default_currency` is the currency of a login
    BrokerFlow does not know."""

    run_id: uuid.UUID
    server: str
    since: datetime
    until: datetime
    server_clock_offset: int = 0
    default_currency: str = "USD"


class FetchSettlements(Contract):
    """Every processor's settlement report of `day`, stored as run `run_id`'s processor side."""

    run_id: uuid.UUID
    day: date


class FetchBalances(Contract):
    """The balances of the server's accounts as of `period_end`, stored as run `run_id`'s
    balance snapshot: each MT5 balance as read now less every ingested deal after the end, and
    what trading (the trade deals' Profit + Commission + Swap + Fee) had changed by then."""

    run_id: uuid.UUID
    server: str
    period_end: datetime
    default_currency: str = "USD"


class SnapshotWaiting(Contract):
    """The payments BrokerFlow waits on a processor for, stored as run `run_id`'s snapshot."""

    run_id: uuid.UUID


class RunRef(Contract):
    run_id: uuid.UUID


class MatchRun(Contract):
    """Match run `run_id`. With `as_of`, its waiting payments are classified too (lost
    webhooks; payouts waiting longer than `stuck_after_seconds` at `as_of`: stuck)."""

    run_id: uuid.UUID
    as_of: datetime | None = None
    stuck_after_seconds: int = Field(default=86400, ge=0)


class StoredReport(Contract):
    pdf_key: str | None = None
    csv_key: str | None = None


class MailedAlerts(Contract):
    recipients: int = 0
    cases: int = 0


class Stored(Contract):
    rows: int


class Matched(Contract):
    matched: int
    breaks: int
    # Keys of earlier timing breaks whose other side this run found.
    cleared: list[str] = Field(default_factory=list)


class FileCases(Contract):
    run_id: uuid.UUID
    cleared: list[str] = Field(default_factory=list)
    alert_above: Decimal = Decimal("100")


class FiledCases(Contract):
    opened: int
    carried: int
    auto_closed: int
    alerted: int


# -- steps ---------------------------------------------------------------------------------------

# The run's row (status `loading`), once per run id.
open_reconciliation_run = Step("open_reconciliation_run", OpenRun, type(None), policies.DATABASE)
# `deal/get_batch` over the window (split while an answer is full); the run's MT5 snapshot is
# replaced whole, so a retried attempt stores the same rows once.
fetch_reconciliation_deals = Mt5Step(
    "fetch_reconciliation_deals", FetchDeals, Stored, policies.BULK
)
# Each processor's `settlement(day)`; the run's processor snapshot is replaced whole.
fetch_settlement_reports = Step("fetch_settlement_reports", FetchSettlements, Stored, policies.BULK)
# `match_run`: the three sides read and matched, the breaks stored (replacing any of an
# earlier attempt), the run `matched`.
match_reconciliation_run = Step("match_reconciliation_run", MatchRun, Matched, policies.BULK)
# Cases: one per open break key (opened or carried to this run), timing cases cleared by this
# run auto-closed, new ones at or above the threshold alerted; audited as the system.
file_reconciliation_cases = Step(
    "file_reconciliation_cases", FileCases, FiledCases, policies.DATABASE
)
# The server's accounts read (`user/get_batch`), rolled back to the period's end with the
# ingested deals; the run's balance snapshot replaced whole. Ingestion behind the read: not
# checked (the run's `balances_note` says why), the run goes on.
fetch_reconciliation_balances = Mt5Step(
    "fetch_reconciliation_balances", FetchBalances, Stored, policies.BULK
)
# The payments waiting on a processor (a deposit `awaiting_funds`, a withdrawal `payout_sent`);
# the run's snapshot replaced whole.
snapshot_waiting_payments = Step(
    "snapshot_waiting_payments", SnapshotWaiting, Stored, policies.DATABASE
)
# One mail to each active finance officer listing the run's new alerted cases (the same
# Message-ID on every attempt); a recipient the mail server refuses is logged and skipped.
# Given up after an hour (the run must end within RECONCILIATION_RUN_TIMEOUT; the cases and
# the WARNING on the logger stand without the mail).
ALERT_MAIL = policies.Policy(
    timeout=policies.MAIL.timeout,
    retry=policies.MAIL.retry,
    give_up_after=timedelta(hours=1),
)
mail_reconciliation_alerts = Step("mail_reconciliation_alerts", RunRef, MailedAlerts, ALERT_MAIL)
# The run's report (PDF and CSV) rendered and stored once under the run's keys.
store_reconciliation_report = Step(
    "store_reconciliation_report", RunRef, StoredReport, policies.BULK
)
