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
    "AccountChange",
    "AccountStateHistoryRow",
    "AccountStateRow",
    "AuditEntry",
    "AuthSession",
    "AuthThrottle",
    "Client",
    "ClientDocument",
    "DealRow",
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
    "ScreeningHit",
    "ScreeningList",
    "ScreeningParty",
    "StaffUser",
    "Transfer",
    "UnmatchedFunds",
    "WebhookEvent",
]
