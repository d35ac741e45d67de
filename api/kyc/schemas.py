"""What compliance sends and reads: the review queue, a case with its evidence, decisions, screening
hits and lists, and staff changes to live MT5 accounts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, model_validator

from api.audit.schemas import AuditView
from api.schemas import SPACES, Reason, Stripped
from domain.kyc import CaseStatus, ReviewAction

InfoNeeded = Annotated[str, Stripped(0, 2000)]
EddText = Annotated[str, Stripped(10, 2000)]


class EnhancedDueDiligence(BaseModel):
    """What an officer established to approve a confirmed politically exposed person (AMLD
    art. 20): where the wealth and these funds come from, the function, and the relationship's
    purpose. Each at least a sentence (10 characters)."""

    model_config = ConfigDict(extra="forbid")

    source_of_wealth: EddText
    source_of_funds: EddText
    public_function: EddText
    relationship_purpose: EddText


GroupName = Annotated[str, Stripped(1, 128)]


# -- the queue -----------------------------------------------------------------------------------


class QueueItem(BaseModel):
    case_id: UUID
    client_id: UUID
    client_name: str
    client_email: str
    client_country: str
    reason: str
    status: CaseStatus
    risk_level: str | None
    risk_score: int | None
    hits: int
    open_hits: int
    requires_four_eyes: bool
    approvals: int
    waiting_since: datetime | None
    due_at: datetime | None
    # Negative once the case is overdue; None while it has no due time (automatic checks).
    seconds_to_sla: int | None
    escalated: bool
    escalated_at: datetime | None
    created_at: datetime


class QueuePage(BaseModel):
    items: list[QueueItem]
    total: int
    limit: int
    offset: int


# -- one case ------------------------------------------------------------------------------------


class ClientPersonalData(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    full_name: str
    email: str
    date_of_birth: date
    country: str
    nationality: str | None
    phone: str | None
    address_line1: str | None
    address_line2: str | None
    city: str | None
    postal_code: str | None
    email_verified_at: datetime | None
    category: str
    account_type: str
    status: str
    kyc_status: str
    screening_status: str
    risk_level: str | None
    risk_score: int | None
    created_at: datetime


class QuestionnaireResult(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    version: str
    score: int
    max_score: int
    outcome: str
    category: str
    leverage_cap: int | None
    requested_professional: bool
    source_of_funds: str
    created_at: datetime


class DocumentView(BaseModel):
    id: UUID
    kind: str
    status: str
    filename: str
    content_type: str
    pages: int
    size_bytes: int
    issued_on: date | None
    expires_on: date | None
    valid_until: date
    uploaded_at: datetime
    download_url: str


class HitView(BaseModel):
    id: UUID
    case_id: UUID
    list_id: int
    source: str
    party_key: str
    listed_name: str
    primary_name: str
    score: int
    name_score: int
    # The secondary factors the matcher weighed: "agree", "disjoint"/"differ" or "unknown".
    dob: str | None
    nationality: str | None
    is_pep: bool
    factors: dict[str, Any]
    status: str
    updated_at: datetime


class RiskFactorView(BaseModel):
    name: str
    points: int
    detail: str = ""


class RiskBreakdown(BaseModel):
    score: int | None
    level: str | None
    factors: list[RiskFactorView]


class KycDecisionView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    review_round: int
    officer_id: UUID
    action: str
    reason: str
    info_needed: str | None
    created_at: datetime


class CaseDetail(BaseModel):
    case_id: UUID
    workflow_id: str
    reason: str
    status: CaseStatus
    closed: bool
    account_type: str
    mt5_server: str
    requires_four_eyes: bool
    review_round: int
    approvals: list[UUID]
    waiting_since: datetime | None
    due_at: datetime | None
    seconds_to_sla: int | None
    escalated: bool
    escalated_at: datetime | None
    reminders_sent: int
    info_needed: str | None
    client_note: str | None
    decided_at: datetime | None
    decision_reason: str | None
    created_at: datetime
    client: ClientPersonalData
    questionnaire: QuestionnaireResult | None
    documents: list[DocumentView]
    hits: list[HitView]
    risk: RiskBreakdown
    decisions: list[KycDecisionView]
    audit: list[AuditView]
    # Recorded by the officers who approved a confirmed PEP; None otherwise.
    enhanced_due_diligence: dict[str, Any] | None = None
    # Email of every staff member named in `decisions` and `audit` (by id), to show who acted.
    staff_emails: dict[str, str] = {}


# -- decisions -----------------------------------------------------------------------------------


class CaseDecisionRequest(BaseModel):
    # `info_needed` goes with `request_info`: said in the document too, as the check says it.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"properties": {"action": {"not": {"const": ReviewAction.REQUEST_INFO.value}}}},
                {
                    "required": ["info_needed"],
                    "properties": {"info_needed": {"type": "string", "pattern": f"[^{SPACES}]"}},
                },
            ]
        },
    )

    action: ReviewAction
    reason: Reason
    # What the client must provide: required with request_info.
    info_needed: InfoNeeded | None = None
    # Required to approve a case with a confirmed PEP hit.
    enhanced_due_diligence: EnhancedDueDiligence | None = None

    @model_validator(mode="after")
    def _info_for_a_request(self) -> CaseDecisionRequest:
        if self.action is ReviewAction.REQUEST_INFO and not self.info_needed:
            raise ValueError("info_needed: say what the client must provide")
        return self


class CaseDecisionResult(BaseModel):
    case_id: UUID
    status: CaseStatus
    requires_four_eyes: bool
    approvals: int
    escalated: bool


class HitReview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # cleared: a false positive; confirmed: a true match.
    status: Literal["cleared", "confirmed"]
    reason: Reason


# -- screening lists -----------------------------------------------------------------------------


class ScreeningListView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    published_at: datetime | None
    digest: str
    party_count: int
    active: bool
    loaded_at: datetime


class ListUploadResult(BaseModel):
    source: str
    digest: str
    storage_key: str
    workflow_id: str
    party_count: int
    published_at: datetime | date | None
    # True when this very file is already a loaded list: nothing new was started.
    already_loaded: bool


# -- account changes by staff --------------------------------------------------------------------


class GroupChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group: GroupName
    reason: Reason | None = None


class TradingChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool
    reason: Reason


class CloseAccountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class AccountChangeDecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    reason: Reason


class AccountChangeView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    mt5_account_id: UUID
    client_id: UUID
    kind: str
    status: str
    requested: dict[str, Any]
    before: dict[str, Any] | None
    requested_by_kind: str
    requested_by_id: UUID
    workflow_id: str
    reason: str | None
    decided_by: UUID | None
    decided_at: datetime | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime


class AccountChangePage(BaseModel):
    items: list[AccountChangeView]
    limit: int
    offset: int
