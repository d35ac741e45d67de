"""The live exposure of one MT5 server (`RiskExposure`, run by the `risk-exposure-<server>`
Temporal Schedule every `risk.interval`): one step, on the server's own `mt5-<server>` queue,
reads the server's ingested positions, open orders, symbols and account states with each
account's group, leverage, country and book, and from MT5 itself the groups' margin mode and
currency, the group and leverage of accounts BrokerFlow did not open, and the symbols' last
ticks; it computes the exposure (`domain.exposure`), stores a point of the series (points older
than `risk.retention` are deleted) and evaluates the alert thresholds on it
(docs/risk-exposure.md, "Live view, alerts, dashboard"). Runs started before that step existed
ran `record_exposure_point`, the same on the main queue without MT5. The alerts it raises are
mailed to the risk desk and, when a webhook is configured, each is posted to it by a
`RiskAlertWebhook` workflow of its own (one per alert and raise, retried until delivered or a
day has passed)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from temporalio.common import RetryPolicy

from contracts.policies import Policy
from contracts.process import Process
from contracts.steps import Mt5Step, Step
from domain.frozen import Frozen as Contract


def risk_exposure_schedule_id(server: str) -> str:
    return f"risk-exposure-{server}"


class RiskExposureInput(Contract):
    """The schedule's argument (written by `schedules.py` from `settings.risk`)."""

    server: str
    currency: str = "USD"
    retention: timedelta = timedelta(days=2)


class RecordExposurePoint(Contract):
    server: str
    currency: str = "USD"
    retention: timedelta = timedelta(days=2)


class ExposurePointRecorded(Contract):
    """What one run stored: the point (None when the calculation was refused, `error` says
    why), its headline figure, the alerts it raised and cleared (`scope:key:metric`)."""

    point_id: int | None = None
    net_notional: str | None = None
    positions: int = 0
    orders: int = 0
    # Logins with positions or orders but no BrokerFlow account (group, leverage unknown).
    skipped_logins: list[int] = Field(default_factory=list)
    raised: list[str] = Field(default_factory=list)
    cleared: list[str] = Field(default_factory=list)
    error: str | None = None
    # The alerts raised (new or raised again) by this point, to be mailed to the risk desk.
    raised_alert_ids: list[str] = Field(default_factory=list)
    # The same raises, to be posted to the risk webhook; empty when none is configured.
    webhook_alerts: list[RaisedAlert] = Field(default_factory=list)
    # What was read from MT5 (`record_live_exposure_point` only): the logins without a
    # BrokerFlow account counted with their MT5 group and leverage, the groups whose MarginMode
    # could not be read (their accounts read as hedging), how many symbols were quoted from
    # their last tick and how many from their positions' current prices, and the MT5 reads
    # that failed (the point is computed all the same, from what the ingestion stored).
    mt5_logins: list[int] = Field(default_factory=list)
    groups_unread: list[str] = Field(default_factory=list)
    tick_quotes: int = 0
    position_quotes: int = 0
    mt5_errors: list[str] = Field(default_factory=list)


class RaisedAlert(Contract):
    """One raise of one alert: `raised_count` tells a raise from the same alert's earlier ones."""

    alert_id: str
    raised_count: int


class DeliverRiskAlerts(Contract):
    server: str
    alert_ids: list[str]


class RiskAlertsDelivered(Contract):
    recipients: int = 0


class RiskAlertWebhookInput(Contract):
    server: str
    alert: RaisedAlert


class RiskAlertWebhookPosted(Contract):
    """`delivered` (the receiver answered 2xx, now or at an earlier attempt), `not_configured`
    (no webhook any more), `gone` (the alert no longer exists)."""

    outcome: str
    http_status: int | None = None


RISK_EXPOSURE = Process("RiskExposure", RiskExposureInput, ExposurePointRecorded)
RISK_ALERT_WEBHOOK = Process("RiskAlertWebhook", RiskAlertWebhookInput, RiskAlertWebhookPosted)


def risk_alert_webhook_workflow_id(alert: RaisedAlert) -> str:
    """One delivery per alert and raise: a second start for the same raise is refused."""
    return f"risk-alert-webhook-{alert.alert_id}-{alert.raised_count}"


def risk_alert_event_id(alert: RaisedAlert) -> str:
    """The webhook event's id, the receiver's de-duplication key (the same on every attempt)."""
    return f"risk-alert-{alert.alert_id}-{alert.raised_count}"


# A point read late is no use: a few quick tries, then the schedule's next run is the retry.
EXPOSURE_READ = Policy(
    timeout=timedelta(seconds=30),
    retry=RetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        maximum_interval=timedelta(seconds=5),
        maximum_attempts=3,
    ),
)

# Reads, computes, stores the point, deletes points past retention and updates the alerts, in
# one transaction (a retried attempt after a lost answer stores a second point a moment later:
# harmless for a series).
record_exposure_point = Step(
    "record_exposure_point", RecordExposurePoint, ExposurePointRecorded, EXPOSURE_READ
)

# The same on the server's MT5 queue, with the MT5 reads (groups, unknown accounts, last
# ticks; each within `MT5_READS_WITHIN` seconds, else the ingested state alone): a little more
# time than the database step, the same few tries.
LIVE_EXPOSURE_READ = Policy(timeout=timedelta(seconds=60), retry=EXPOSURE_READ.retry)

record_live_exposure_point = Mt5Step(
    "record_live_exposure_point", RecordExposurePoint, ExposurePointRecorded, LIVE_EXPOSURE_READ
)

# Mail to the risk desk: a few tries within the run; a mail server down longer loses the mail
# (the alert itself is in the console and stays there until resolved).
ALERT_MAIL = Policy(
    timeout=timedelta(seconds=30),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=3,
        non_retryable_error_types=["MailRejected"],
    ),
)

# One mail per active staff user with the risk or dealer role, listing the raised alerts; the
# Message-ID is derived from the alerts and how often each was raised, so a retry repeats it.
deliver_risk_alerts = Step(
    "deliver_risk_alerts", DeliverRiskAlerts, RiskAlertsDelivered, ALERT_MAIL
)

# The webhook: retried with a growing pause (up to ten minutes) for a day, so a receiver down
# for hours still gets the alert; a receiver that refuses it (a 4xx other than 408 and 429) is
# not asked again. Retries are durable: the attempts are the Temporal server's, not a loop's.
ALERT_WEBHOOK = Policy(
    timeout=timedelta(seconds=30),
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=10),
        maximum_attempts=0,
        non_retryable_error_types=["RiskWebhookRefused"],
    ),
    give_up_after=timedelta(days=1),
)

# POST the alert, signed (HMAC-SHA256 with the configured secret), to the configured URL; the
# event id (`risk-alert-<alert id>-<raise>`) is the receiver's de-duplication key, the same on
# every attempt.
post_risk_alert_webhook = Step(
    "post_risk_alert_webhook", RiskAlertWebhookInput, RiskAlertWebhookPosted, ALERT_WEBHOOK
)
