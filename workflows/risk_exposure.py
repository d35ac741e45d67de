"""The live exposure of one MT5 server (run by its `risk-exposure-<server>` Temporal Schedule):
one point of the series stored and the alert thresholds evaluated on it; the alerts it raised
are mailed to the risk desk and, when a webhook is configured, each raise is posted to it by a
`RiskAlertWebhook` workflow of its own, which outlives the run (the schedule skips a run while
the previous one is open: a receiver down for hours must not stop the series). A run that fails
after its few attempts fails alone; the schedule's next run computes a fresh point."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from contracts import risk_exposure
    from contracts.risk_exposure import (
        RISK_ALERT_WEBHOOK,
        RISK_EXPOSURE,
        DeliverRiskAlerts,
        ExposurePointRecorded,
        RecordExposurePoint,
        RiskAlertWebhookInput,
        RiskAlertWebhookPosted,
        RiskExposureInput,
        risk_alert_webhook_workflow_id,
    )

__all__ = ["RiskAlertWebhookWorkflow", "RiskExposureWorkflow"]

# Runs started before this change mail only; from it on, raised alerts also go to the webhook.
ALERTS_BY_WEBHOOK = "risk-alerts-by-webhook"
# Runs started before this change computed the point on the main queue from the ingested state
# alone; from it on, on the server's MT5 queue with its groups, accounts and last ticks.
EXPOSURE_WITH_MT5_TERMS = "risk-exposure-with-mt5-terms"


@workflow.defn(name=RISK_EXPOSURE.name)
class RiskExposureWorkflow:
    @workflow.run
    async def run(self, request: RiskExposureInput) -> ExposurePointRecorded:
        step = RecordExposurePoint(
            server=request.server, currency=request.currency, retention=request.retention
        )
        if workflow.patched(EXPOSURE_WITH_MT5_TERMS):
            result = await risk_exposure.record_live_exposure_point(request.server, step)
        else:
            result = await risk_exposure.record_exposure_point(step)
        if result.error:
            workflow.logger.warning("exposure of %s not computed: %s", request.server, result.error)
        if result.raised:
            workflow.logger.warning("risk alerts raised on %s: %s", request.server, result.raised)
        if result.raised_alert_ids:
            await risk_exposure.deliver_risk_alerts(
                DeliverRiskAlerts(server=request.server, alert_ids=result.raised_alert_ids)
            )
        if result.webhook_alerts and workflow.patched(ALERTS_BY_WEBHOOK):
            for alert in result.webhook_alerts:
                try:
                    await RISK_ALERT_WEBHOOK.start_as_child(
                        RiskAlertWebhookInput(server=request.server, alert=alert),
                        id=risk_alert_webhook_workflow_id(alert),
                        parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    )
                except WorkflowAlreadyStartedError:
                    pass  # this raise is on its way already (a retried run)
        return result


@workflow.defn(name=RISK_ALERT_WEBHOOK.name)
class RiskAlertWebhookWorkflow:
    """One raise of one alert posted to the risk webhook, retried by Temporal (growing pauses,
    up to a day); a receiver that refuses it, or a day without an answer, ends it with the
    outcome `refused` / `given_up` (logged: the alert is in the console all the same)."""

    @workflow.run
    async def run(self, request: RiskAlertWebhookInput) -> RiskAlertWebhookPosted:
        try:
            return await risk_exposure.post_risk_alert_webhook(request)
        except ActivityError as failure:
            cause = failure.cause
            refused = getattr(cause, "type", None) == "RiskWebhookRefused"
            workflow.logger.error(
                "risk alert %s (raise %d) not posted to the webhook: %s",
                request.alert.alert_id,
                request.alert.raised_count,
                cause or failure,
            )
            return RiskAlertWebhookPosted(outcome="refused" if refused else "given_up")
