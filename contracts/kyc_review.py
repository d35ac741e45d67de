"""A KYC case under review (`KycReview`): from the automatic checks to the officers' decision
and, for an onboarding case, the live account. Its id, input, the `decide` update, the
`info_submitted` signal and the `state` query the API reaches it by, and each step's argument,
result and policy; also the cases the sweeps open, whose reviews they start as children.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from contracts import policies
from contracts.account_opening import AccountOpeningInput
from contracts.kyc import OfficerDecision, StaffActor
from contracts.process import Process, Query, Signal, Update
from contracts.steps import Step
from domain.frozen import Frozen as Contract
from domain.kyc import CaseReason, CaseStatus, Decision, KycSla


def kyc_case_workflow_id(case_id: uuid.UUID) -> str:
    return f"kyc-case-{case_id}"


class KycCaseInput(Contract):
    case_id: uuid.UUID
    client_id: uuid.UUID
    reason: CaseReason = CaseReason.ONBOARDING
    # The service levels of this case (from `settings.kyc`): workflows cannot read settings.
    sla: KycSla = KycSla()


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


KYC_REVIEW = Process("KycReview", KycCaseInput, CaseView)
KYC_DECIDE = Update("decide", OfficerDecision, CaseView)
KYC_INFO_SUBMITTED = Signal("info_submitted", ClientInfo)
KYC_STATE = Query("state", CaseView)


# -- the steps -----------------------------------------------------------------------------------


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


run_kyc_checks = Step("run_kyc_checks", RunChecksInput, ChecksResult, policies.DATABASE)
record_kyc_decision = Step(
    "record_kyc_decision", RecordDecisionInput, type(None), policies.DATABASE
)
record_kyc_client_info = Step(
    "record_kyc_client_info", RecordClientInfoInput, type(None), policies.DATABASE
)
record_kyc_reminder = Step(
    "record_kyc_reminder", RecordReminderInput, type(None), policies.DATABASE
)
escalate_kyc_case = Step("escalate_kyc_case", EscalateCaseInput, type(None), policies.DATABASE)
prepare_live_account = Step(
    "prepare_live_account", PrepareLiveAccountInput, LiveAccountPlan, policies.DATABASE
)


# -- cases opened by a sweep or a list refresh ---------------------------------------------------


class OpenedCase(Contract):
    case_id: uuid.UUID
    client_id: uuid.UUID
    reason: CaseReason


class OpenedCases(Contract):
    cases: tuple[OpenedCase, ...] = ()
    # More clients may qualify (the batch was full): ask again.
    more: bool = False
