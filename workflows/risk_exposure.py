"""The live exposure of one MT5 server (run by its `risk-exposure-<server>` Temporal Schedule):
one point of the series stored and the alert thresholds evaluated on it; the alerts it raised
are mailed to the risk desk. A run that fails after its few attempts fails alone; the
schedule's next run computes a fresh point."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts import risk_exposure
    from contracts.risk_exposure import (
        RISK_EXPOSURE,
        DeliverRiskAlerts,
        ExposurePointRecorded,
        RecordExposurePoint,
        RiskExposureInput,
    )

__all__ = ["RiskExposureWorkflow"]


@workflow.defn(name=RISK_EXPOSURE.name)
class RiskExposureWorkflow:
    @workflow.run
    async def run(self, request: RiskExposureInput) -> ExposurePointRecorded:
        result = await risk_exposure.record_exposure_point(
            RecordExposurePoint(
                server=request.server, currency=request.currency, retention=request.retention
            )
        )
        if result.error:
            workflow.logger.warning("exposure of %s not computed: %s", request.server, result.error)
        if result.raised:
            workflow.logger.warning("risk alerts raised on %s: %s", request.server, result.raised)
        if result.raised_alert_ids:
            await risk_exposure.deliver_risk_alerts(
                DeliverRiskAlerts(server=request.server, alert_ids=result.raised_alert_ids)
            )
        return result
