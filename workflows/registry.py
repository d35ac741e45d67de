"""Every workflow the worker serves (kept apart from `workflows/__init__`, which the workflow
modules themselves import)."""

from __future__ import annotations

from workflows.account_change import AccountChangeWorkflow
from workflows.account_opening import AccountOpeningWorkflow
from workflows.analytics import AnalyticsWorkflow
from workflows.client_mail import ClientMailWorkflow
from workflows.client_profiling import BookMoveWorkflow, ClientProfilingWorkflow
from workflows.dealer_revenue import DealerRevenueWorkflow
from workflows.deposit import DepositWorkflow
from workflows.fx_feed import FxFeedWorkflow
from workflows.ib_payout import IbPayoutAgainWorkflow, IbPayoutCycleWorkflow, IbPayoutWorkflow
from workflows.kyc_review import KycReviewWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.rekyc_sweep import ReKycSweepWorkflow
from workflows.risk_exposure import RiskAlertWebhookWorkflow, RiskExposureWorkflow
from workflows.screening_refresh import ScreeningListRefreshWorkflow
from workflows.trade_ingestion import DealBackfillWorkflow, TradeIngestionWorkflow
from workflows.transfer import TransferWorkflow
from workflows.unmatched_funds import ResolveUnmatchedFundsWorkflow
from workflows.withdrawal import WithdrawalWorkflow

WORKFLOWS = [
    AccountOpeningWorkflow,
    DepositWorkflow,
    WithdrawalWorkflow,
    TransferWorkflow,
    ResolveUnmatchedFundsWorkflow,
    KycReviewWorkflow,
    AccountChangeWorkflow,
    ScreeningListRefreshWorkflow,
    ReKycSweepWorkflow,
    ClientMailWorkflow,
    TradeIngestionWorkflow,
    DealBackfillWorkflow,
    IbPayoutCycleWorkflow,
    IbPayoutWorkflow,
    IbPayoutAgainWorkflow,
    FxFeedWorkflow,
    ReconciliationWorkflow,
    RiskExposureWorkflow,
    RiskAlertWebhookWorkflow,
    AnalyticsWorkflow,
    DealerRevenueWorkflow,
    ClientProfilingWorkflow,
    BookMoveWorkflow,
]
