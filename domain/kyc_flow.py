"""The KYC review and account-change processes as data: workflow inputs, update and signal
payloads, and the names the API uses to reach them. Workflows, activities and the API all
speak these models; none imports another's module for them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from domain.account_opening import AccountOpeningInput
from domain.kyc import CaseReason, CaseStatus, Decision, KycSla


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True)


# Workflow type names: the API starts workflows by these, so it need not import them.
KYC_REVIEW_WORKFLOW = "KycReview"
ACCOUNT_CHANGE_WORKFLOW = "AccountChange"
SCREENING_REFRESH_WORKFLOW = "ScreeningListRefresh"
REKYC_SWEEP_WORKFLOW = "ReKycSweep"
REKYC_SWEEP_SCHEDULE = "rekyc-sweep-daily"
CLIENT_MAIL_WORKFLOW = "ClientMail"

# -- KYC review ---------------------------------------------------------------------------------

KYC_DECIDE_UPDATE = "decide"
KYC_INFO_SIGNAL = "info_submitted"
KYC_STATE_QUERY = "state"


def kyc_case_workflow_id(case_id: uuid.UUID) -> str:
    return f"kyc-case-{case_id}"


class KycCaseInput(Contract):
    case_id: uuid.UUID
    client_id: uuid.UUID
    reason: CaseReason = CaseReason.ONBOARDING
    # The service levels of this case (from `settings.kyc`): workflows cannot read settings.
    sla: KycSla = KycSla()


class StaffActor(Contract):
    """Who acts, carried into the activity that writes the audit entry."""

    staff_id: uuid.UUID
    roles: tuple[str, ...] = ()
    ip: str | None = None
    request_id: str | None = None
    trace_id: str | None = None


class OfficerDecision(Contract):
    """The `decide` update's argument."""

    actor: StaffActor
    decision: Decision


class CaseView(Contract):
    """The `decide` update's result and the `state` query's answer."""

    case_id: uuid.UUID
    status: CaseStatus
    requires_four_eyes: bool
    approvals: tuple[str, ...] = ()
    escalated: bool = False
    reminders_sent: int = 0
    review_round: int = 1
    # What the client was asked for (INFO_REQUESTED).
    info_needed: str | None = None


class ClientInfo(Contract):
    """The `info_submitted` signal: the client answered a request for information."""

    note: str = Field(default="", max_length=2000)
    document_ids: tuple[uuid.UUID, ...] = ()


# -- mail to clients (and to compliance) ---------------------------------------------------------


class MailTemplate(StrEnum):
    VERIFY_EMAIL = "verify_email"
    KYC_INFO_REQUESTED = "kyc_info_requested"
    KYC_REMINDER = "kyc_reminder"
    KYC_APPROVED = "kyc_approved"
    KYC_REJECTED = "kyc_rejected"
    ACCOUNT_READY = "account_ready"
    LEVERAGE_DECIDED = "leverage_decided"
    CASE_ESCALATED = "case_escalated"


def client_mail_workflow_id(key: str) -> str:
    return f"mail-{key}"


class ClientMailInput(Contract):
    """One email, sent at least once under a stable Message-ID derived from `key` (a retried
    send carries the same id, so mail clients show it once)."""

    key: str = Field(min_length=1, max_length=150)
    client_id: uuid.UUID
    template: MailTemplate
    context: dict[str, str] = Field(default_factory=dict)


# -- sanctions and PEP lists -------------------------------------------------------------------


def screening_refresh_workflow_id(digest: str) -> str:
    return f"screening-list-{digest[:32]}"


class ScreeningRefreshInput(Contract):
    """Load one published list file (kept in the document store under `storage_key`), make it
    the active list of its source, and re-screen every client against it."""

    source: str
    storage_key: str
    digest: str
    uploaded_by: StaffActor | None = None
    # Service levels of the cases the re-screening opens (from `settings.kyc`).
    sla: KycSla = KycSla()


# -- account changes (leverage, group, trading rights, closure) ---------------------------------

ACCOUNT_CHANGE_DECIDE_UPDATE = "decide"
ACCOUNT_CHANGE_STATE_QUERY = "state"


def account_change_workflow_id(change_id: uuid.UUID) -> str:
    return f"account-change-{change_id}"


class AccountChangeKind(StrEnum):
    LEVERAGE = "leverage"
    GROUP = "group"
    DISABLE_TRADING = "disable_trading"
    ENABLE_TRADING = "enable_trading"
    CLOSE = "close"


class AccountChangeStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPLYING = "applying"
    APPLIED = "applied"
    REJECTED = "rejected"
    FAILED = "failed"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    TRADING_DISABLED = "trading_disabled"
    CLOSED = "closed"


class AccountChangeInput(Contract):
    change_id: uuid.UUID
    account_id: uuid.UUID
    kind: AccountChangeKind
    # Set for LEVERAGE and GROUP.
    leverage: int | None = None
    group: str | None = None
    # A leverage above the client's appropriateness/risk cap waits for a compliance decision.
    needs_approval: bool = False
    # The staff member who asked for it (group, rights, closure), for the audit entry; None
    # when the client asked (the `account_changes` row names them).
    requested_by: StaffActor | None = None
    # How long a change waiting for approval may sit before it is escalated (`review`).
    sla: KycSla = KycSla()


# -- the steps of these workflows (activity names and their contracts) -------------------------


class KycStep(StrEnum):
    """Activity names, fixed so that renaming a Python function never breaks history."""

    RUN_CHECKS = "run_kyc_checks"
    RECORD_DECISION = "record_kyc_decision"
    RECORD_CLIENT_INFO = "record_kyc_client_info"
    RECORD_REMINDER = "record_kyc_reminder"
    ESCALATE_CASE = "escalate_kyc_case"
    PREPARE_LIVE_ACCOUNT = "prepare_live_account"
    SEND_CLIENT_MAIL = "send_client_mail"
    LOAD_SCREENING_LIST = "load_screening_list"
    RESCREEN_CLIENTS = "rescreen_clients"
    OPEN_LIST_CHANGE_CASES = "open_list_change_cases"
    OPEN_DOCUMENT_EXPIRY_CASES = "open_document_expiry_cases"


class ChangeStep(StrEnum):
    LOAD_ACCOUNT_CHANGE = "load_account_change"
    RECORD_CHANGE_DECISION = "record_account_change_decision"
    ESCALATE_CHANGE = "escalate_account_change"
    READ_MT5_ACCOUNT = "read_mt5_account"  # on the account's MT5 queue
    APPLY_ACCOUNT_CHANGE = "apply_account_change"  # on the account's MT5 queue
    RECORD_CHANGE_APPLIED = "record_account_change_applied"
    MARK_CHANGE_FAILED = "mark_account_change_failed"


class RunChecksInput(Contract):
    case_id: uuid.UUID
    client_id: uuid.UUID
    # Workflow time: the case starts waiting from here (the same on every retry).
    at: datetime
    sla: KycSla = KycSla()


class ChecksResult(Contract):
    """What the automatic checks found, and where the case now waits."""

    status: CaseStatus  # IN_REVIEW, or INFO_REQUESTED (a document-expiry case)
    requires_four_eyes: bool
    risk_score: int
    risk_level: str
    potential_matches: int = 0
    # What the client must provide, when the case opens waiting for them.
    info_needed: str | None = None


class RecordDecisionInput(Contract):
    case_id: uuid.UUID
    client_id: uuid.UUID
    actor: StaffActor
    decision: Decision
    review_round: int  # the round the decision is taken in
    status: CaseStatus  # the case after it
    next_round: int
    at: datetime
    # When the case is due next (review or the client's answer); None once it is closed.
    due_at: datetime | None = None


class RecordClientInfoInput(Contract):
    case_id: uuid.UUID
    client_id: uuid.UUID
    info: ClientInfo
    at: datetime
    due_at: datetime


class RecordReminderInput(Contract):
    case_id: uuid.UUID
    client_id: uuid.UUID
    # Reminders sent for the current request, this one included (an absolute value: a retry
    # writes the same number).
    reminders_sent: int
    at: datetime


class EscalateCaseInput(Contract):
    case_id: uuid.UUID
    client_id: uuid.UUID
    at: datetime
    reason: str


class PrepareLiveAccountInput(Contract):
    case_id: uuid.UUID


class LiveAccountPlan(Contract):
    """The live account to open for an approved client; `opening` is None when there is
    nothing to open (the client already has a live account)."""

    opening: AccountOpeningInput | None = None


class LoadedList(Contract):
    list_id: int
    source: str
    party_count: int
    # False when the same file had been loaded before (the list is made active again).
    newly_loaded: bool


class RescreenInput(Contract):
    list_id: int  # the list whose arrival caused the re-screening
    after: uuid.UUID | None = None  # clients are taken in id order, after this one
    limit: int = Field(default=200, ge=1, le=2000)


class RescreenBatch(Contract):
    # Clients with a potential match (>= ALERT_THRESHOLD) that none of their cases holds yet.
    flagged: tuple[uuid.UUID, ...] = ()
    # Where the next batch starts; None when this was the last one.
    next_after: uuid.UUID | None = None


class OpenCasesInput(Contract):
    client_ids: tuple[uuid.UUID, ...]
    # The business key of the opening (a list digest): the same key opens the same case ids.
    key: str


class ExpirySweepInput(Contract):
    key: str  # the sweep's own workflow id: a retried step opens the same cases
    limit: int = Field(default=200, ge=1, le=2000)


class OpenedCase(Contract):
    case_id: uuid.UUID
    client_id: uuid.UUID
    reason: CaseReason


class OpenedCases(Contract):
    cases: tuple[OpenedCase, ...] = ()
    # More clients may qualify (the batch was full): ask again.
    more: bool = False


class ReKycSweepInput(Contract):
    """The daily schedule's argument (written by `ops.schedules` from `settings.kyc`)."""

    sla: KycSla = KycSla()


class ReKycSweepResult(Contract):
    cases_opened: int


class ScreeningRefreshResult(Contract):
    list_id: int
    clients_screened_batches: int
    cases_opened: int


# -- account changes ---


class ChangeRef(Contract):
    change_id: uuid.UUID


class AccountChangeFacts(Contract):
    """The change and its account, as the workflow needs them."""

    change_id: uuid.UUID
    client_id: uuid.UUID
    account_id: uuid.UUID
    server: str
    login: int
    currency: str
    account_status: AccountStatus
    status: AccountChangeStatus


class AccountChangeView(Contract):
    """The account-change `decide` update's result and its `state` query's answer."""

    change_id: uuid.UUID
    status: AccountChangeStatus
    escalated: bool = False
    decided_by: uuid.UUID | None = None
    reason: str | None = None


class RecordChangeDecisionInput(Contract):
    change_id: uuid.UUID
    actor: StaffActor
    approve: bool
    reason: str
    at: datetime


class EscalateChangeInput(Contract):
    change_id: uuid.UUID
    at: datetime


class Mt5AccountRead(Contract):
    """An MT5 account as `user/get` answers it: the `before` and `after` of a change."""

    login: int
    group: str
    leverage: int
    rights: int
    balance: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)


class ReadMt5AccountInput(Contract):
    change_id: uuid.UUID
    login: int


class ApplyChangeInput(Contract):
    """Absolute values for `user/update`, so a retry sets the same thing again."""

    change_id: uuid.UUID
    login: int
    leverage: int | None = None
    group: str | None = None
    rights: int | None = None
    # CLOSE: refuse (AccountNotEmpty) while positions are open or money is on the account.
    require_empty: bool = False


class RecordChangeAppliedInput(Contract):
    change_id: uuid.UUID
    actor: StaffActor | None = None  # None: the client who asked (named by the change's row)
    before: Mt5AccountRead
    after: Mt5AccountRead
    account_status: AccountStatus


class MarkChangeFailedInput(Contract):
    change_id: uuid.UUID
    reason: str
    error_type: str


class AccountChangeResult(Contract):
    status: AccountChangeStatus
    before: Mt5AccountRead | None = None
    after: Mt5AccountRead | None = None
    reason: str | None = None
