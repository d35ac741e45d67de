"""The live exposure of one MT5 server (`RiskExposure`, run by the `risk-exposure-<server>`
Temporal Schedule every `risk.interval`): one step reads the server's ingested positions, open
orders, symbols and account states with each account's group, leverage, country and book,
computes the exposure (`domain.exposure`), stores a point of the series (points older than
`risk.retention` are deleted) and evaluates the alert thresholds on it (docs/risk-exposure.md,
"Live view, alerts, dashboard")."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from temporalio.common import RetryPolicy

from contracts.policies import Policy
from contracts.process import Process
from contracts.steps import Step
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


class DeliverRiskAlerts(Contract):
    server: str
    alert_ids: list[str]


class RiskAlertsDelivered(Contract):
    recipients: int = 0


RISK_EXPOSURE = Process("RiskExposure", RiskExposureInput, ExposurePointRecorded)

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
