"""The KYC case as a state machine: who may do what to a case, and what it becomes.

A case opens when a client submits their application (or when re-KYC is due), runs automatic
checks, and then waits for compliance officers. The workflow holds the case's state and asks
these rules before it accepts any decision, so a refused action changes nothing anywhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from domain.errors import Conflict, InvalidInput


class CaseStatus(StrEnum):
    CHECKING = "checking"  # automatic checks (screening, risk) running
    IN_REVIEW = "in_review"  # waiting for a compliance officer
    INFO_REQUESTED = "info_requested"  # waiting for the client
    AWAITING_SECOND_APPROVAL = "awaiting_second_approval"  # four-eyes: one approval so far
    APPROVED = "approved"
    REJECTED = "rejected"


CLOSED_STATUSES = frozenset({CaseStatus.APPROVED, CaseStatus.REJECTED})
WAITING_ON_COMPLIANCE = frozenset({CaseStatus.IN_REVIEW, CaseStatus.AWAITING_SECOND_APPROVAL})


class CaseReason(StrEnum):
    """Why a case was opened."""

    ONBOARDING = "onboarding"
    DOCUMENT_EXPIRY = "document_expiry"
    LIST_CHANGE = "list_change"


class ReviewAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_INFO = "request_info"


class CaseState(BaseModel):
    """What the rules need to know about a case."""

    model_config = ConfigDict(frozen=True)

    status: CaseStatus
    requires_four_eyes: bool
    # Officers who approved in the current round; a request for information starts a new round.
    approvals: tuple[str, ...] = ()
    review_round: int = 1

    @property
    def closed(self) -> bool:
        return self.status in CLOSED_STATUSES


class Decision(BaseModel):
    """One officer's action on a case, as the API hands it to the workflow."""

    model_config = ConfigDict(frozen=True)

    officer_id: str = Field(min_length=1, max_length=64)
    action: ReviewAction
    reason: str = Field(min_length=1, max_length=2000)
    # What the client must provide; required for REQUEST_INFO.
    info_needed: str | None = Field(default=None, max_length=2000)


def check_decision(state: CaseState, decision: Decision) -> None:
    """Refuse an action the case cannot take now; the message says why (the API answers 409)."""
    if state.closed:
        raise Conflict(f"the case is closed ({state.status.value}); open a new case instead")
    if state.status is CaseStatus.CHECKING:
        raise Conflict("automatic checks are still running; try again in a moment")
    if decision.action is ReviewAction.REQUEST_INFO and not (decision.info_needed or "").strip():
        raise InvalidInput("say what the client must provide", field="info_needed")
    if decision.action is ReviewAction.APPROVE:
        if state.status is CaseStatus.INFO_REQUESTED:
            raise Conflict("the case waits for the client's information; it cannot be approved")
        if decision.officer_id in state.approvals:
            raise Conflict(
                "this officer has already approved the case; the second approval must come "
                "from a different compliance officer"
            )
    if decision.action is ReviewAction.REQUEST_INFO and state.status is CaseStatus.INFO_REQUESTED:
        raise Conflict("information has already been requested; wait for the client's answer")


def apply_decision(state: CaseState, decision: Decision) -> CaseState:
    """The case after an accepted decision (call `check_decision` first)."""
    check_decision(state, decision)
    if decision.action is ReviewAction.REJECT:
        return state.model_copy(update={"status": CaseStatus.REJECTED})
    if decision.action is ReviewAction.REQUEST_INFO:
        return state.model_copy(
            update={
                "status": CaseStatus.INFO_REQUESTED,
                "approvals": (),
                "review_round": state.review_round + 1,
            }
        )
    approvals = (*state.approvals, decision.officer_id)
    if len(approvals) >= approvals_needed(state):
        return state.model_copy(update={"status": CaseStatus.APPROVED, "approvals": approvals})
    return state.model_copy(
        update={"status": CaseStatus.AWAITING_SECOND_APPROVAL, "approvals": approvals}
    )


def approvals_needed(state: CaseState) -> int:
    return 2 if state.requires_four_eyes else 1


def info_received(state: CaseState) -> CaseState:
    """The client answered a request for information: the case goes back to review."""
    if state.status is not CaseStatus.INFO_REQUESTED:
        raise Conflict("no information was requested on this case")
    return state.model_copy(update={"status": CaseStatus.IN_REVIEW})


class KycSla(BaseModel):
    """Service levels of the review: how long a case may sit before someone is chased."""

    model_config = ConfigDict(frozen=True)

    # An untouched case is escalated to the compliance lead after this long.
    review: timedelta = timedelta(hours=24)
    # A client who owes information is reminded this often, this many times.
    client_reminder: timedelta = timedelta(days=3)
    client_reminders: int = Field(default=3, ge=0, le=10)


def review_due_at(waiting_since: datetime, sla: KycSla) -> datetime:
    return waiting_since + sla.review
