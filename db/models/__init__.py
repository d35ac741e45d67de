from db.models.analytics import AnalyticsDaily, AnalyticsState
from db.models.application import AccountApplication
from db.models.audit import AuditEntry
from db.models.client import Client
from db.models.ib import IntroducingBroker
from db.models.kyc import (
    AccountChange,
    ClientDocument,
    KycCase,
    KycDecision,
    QuestionnaireResponse,
    ScreeningHit,
    ScreeningList,
    ScreeningParty,
)
from db.models.ledger import JournalEntryRow, LedgerAccount, PostingRow
from db.models.mt5_account import Mt5Account, Mt5LoginCounter
from db.models.payments import (
    FinanceCase,
    FxRateRow,
    Notification,
    Payment,
    PaymentDecision,
    Transfer,
    UnmatchedFunds,
    WebhookEvent,
)
from db.models.profiling import BookDecision, ClientProfileRow
from db.models.reconciliation import (
    ReconciliationBreak,
    ReconciliationMt5Deal,
    ReconciliationPspRow,
    ReconciliationRun,
)
from db.models.reconciliation_cases import (
    ReconciliationCase,
    ReconciliationCaseComment,
    ReconciliationSignoff,
)
from db.models.revenue import DealerRuleRow, DealRevenueRow, DealRevenueState
from db.models.risk import AccountBook, ExposurePointRow, RiskAlert, RiskThreshold
from db.models.security import AuthSession, AuthThrottle, PasswordReset
from db.models.staff import StaffUser
from db.models.trading import (
    AccountStateHistoryRow,
    AccountStateRow,
    DealRow,
    HistoryOrderRow,
    IngestionState,
    PositionRow,
)

__all__ = [
    "AccountApplication",
    "AccountBook",
    "AccountChange",
    "AccountStateHistoryRow",
    "AccountStateRow",
    "AnalyticsDaily",
    "AnalyticsState",
    "AuditEntry",
    "AuthSession",
    "AuthThrottle",
    "BookDecision",
    "Client",
    "ClientDocument",
    "ClientProfileRow",
    "DealRevenueRow",
    "DealRevenueState",
    "DealRow",
    "DealerRuleRow",
    "ExposurePointRow",
    "FinanceCase",
    "FxRateRow",
    "HistoryOrderRow",
    "IngestionState",
    "IntroducingBroker",
    "JournalEntryRow",
    "KycCase",
    "KycDecision",
    "LedgerAccount",
    "Mt5Account",
    "Mt5LoginCounter",
    "Notification",
    "PasswordReset",
    "Payment",
    "PaymentDecision",
    "PositionRow",
    "PostingRow",
    "QuestionnaireResponse",
    "ReconciliationBreak",
    "ReconciliationCase",
    "ReconciliationCaseComment",
    "ReconciliationMt5Deal",
    "ReconciliationPspRow",
    "ReconciliationRun",
    "ReconciliationSignoff",
    "RiskAlert",
    "RiskThreshold",
    "ScreeningHit",
    "ScreeningList",
    "ScreeningParty",
    "StaffUser",
    "Transfer",
    "UnmatchedFunds",
    "WebhookEvent",
]
