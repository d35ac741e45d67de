"""Request and response shapes of the reconciliation API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints

from api.schemas import NUL, SPACES, Amount, CurrencyCode, Reason

# A ledger account's code: `<kind>:<owner>:<currency>` (docs/ledger.md).
LedgerAccountCode = Annotated[
    str,
    StringConstraints(
        min_length=7,
        max_length=200,
        pattern=f"^[a-z0-9]+:[^{SPACES}{NUL}:][^{SPACES}{NUL}]*:[A-Z]{{3}}$",
    ),
]
ServerName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=f"^[^{SPACES}{NUL}]+$")
]


class RunView(BaseModel):
    id: UUID
    server: str
    day: date
    period_start: datetime
    period_end: datetime
    status: str
    matched: int | None
    breaks: int | None
    open_cases: int
    created_at: datetime
    finished_at: datetime | None
    signed_off_by: UUID | None = None
    signed_off_at: datetime | None = None
    sign_off_note: str | None = None
    report_pdf_url: str
    report_csv_url: str


class RunPage(BaseModel):
    items: list[RunView]
    total: int


class BackfillRequest(BaseModel):
    """Reconcile `server`'s broker day `day` (today's so far, or any past day) now."""

    server: ServerName
    day: date


class BackfillAccepted(BaseModel):
    workflow_id: str
    server: str
    day: date


class SignOffRequest(BaseModel):
    note: Reason


class AdjustmentView(BaseModel):
    """An adjusting entry proposed on a case (its `number`-th) and what became of it:
    `proposed` (waiting for a second finance officer), `approved` (posted as `entry_key`),
    `rejected` (withdrawn when `decided_by` is its proposer), `replaced` (by a later proposal)
    or `lapsed` (the case closed before anyone decided)."""

    debit_account: str
    credit_account: str
    amount: str
    currency: str
    reason: str
    proposed_by: UUID
    proposed_at: datetime
    approved_by: UUID | None
    entry_key: str | None
    number: int = 1
    status: str = "proposed"
    decided_by: UUID | None = None
    decided_at: datetime | None = None
    # Why it was rejected (or lapsed).
    decision_note: str | None = None


class CaseView(BaseModel):
    """A break case: what the break is (as its last run found it), where it stands, how old."""

    id: UUID
    server: str
    key: str
    type: str
    status: str
    amount: str
    currency: str
    reference: str | None
    login: int | None
    deal: int | None
    provider: str | None
    detail: str
    first_day: date
    last_day: date
    age_days: int
    alerted: bool
    assignee_id: UUID | None
    first_run_id: UUID
    last_run_id: UUID
    closed_at: datetime | None
    resolution: str | None
    # Who resolved it: the approver of its entry, or the officer who explained it.
    resolved_by: UUID | None = None
    # The latest entry proposed on the case, whatever became of it (all: `CaseDetail`).
    adjustment: AdjustmentView | None
    # The case's last reopening after it closed (its earlier closings: `CaseDetail.history`).
    reopened_at: datetime | None = None
    reopened_by: UUID | None = None
    reopen_reason: str | None = None


class CaseComment(BaseModel):
    staff_id: UUID
    body: str
    created_at: datetime


class CaseEvent(BaseModel):
    """One audit row of the case: what was done, by whom, when, and the before and after."""

    at: datetime
    action: str
    actor_kind: str
    actor_id: str | None
    reason: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class CaseDetail(CaseView):
    comments: list[CaseComment]
    # Every entry proposed on the case, the first first.
    proposals: list[AdjustmentView] = []
    # Its audit rows, the oldest first: opened, assigned, proposed, rejected, resolved,
    # reopened... (a reopened case's earlier resolution stays here).
    history: list[CaseEvent] = []


class CasePage(BaseModel):
    items: list[CaseView]
    total: int


class AssignRequest(BaseModel):
    staff_id: UUID


class CommentRequest(BaseModel):
    body: Reason


class ResolveRequest(BaseModel):
    """Why the break needs no entry (explained: nothing to book)."""

    explanation: Reason


class RejectRequest(BaseModel):
    """Why the proposed entry is rejected (or withdrawn by its proposer)."""

    reason: Reason


class ApproveRequest(BaseModel):
    """Optionally, the number of the proposal the approver read: refused (409) when another
    replaced it meanwhile, so an officer never approves an entry they have not seen."""

    proposal: int | None = Field(default=None, ge=1, le=1_000_000)


class ReopenRequest(BaseModel):
    """Why the closed case is worked again."""

    reason: Reason


class AdjustmentRequest(BaseModel):
    """A balanced adjusting entry: `amount` debited to one ledger account and credited to
    another (both in `currency`), posted once a second finance officer approves it."""

    debit_account: LedgerAccountCode
    credit_account: LedgerAccountCode
    amount: Amount
    currency: CurrencyCode
    reason: Reason = Field(description="why the books are adjusted")


# -- console forms (validated again through the API's shapes above) -----------------------------


class ConsoleForm(BaseModel):
    csrf: str = Field(default="", max_length=128)


class ConsoleBackfillForm(ConsoleForm):
    server: str = Field(default="", max_length=64)
    day: str = Field(default="", max_length=10)


class ConsoleNoteForm(ConsoleForm):
    note: str = Field(default="", max_length=1000)


class ConsoleAssignForm(ConsoleForm):
    staff_id: str = Field(default="", max_length=36)


class ConsoleCommentForm(ConsoleForm):
    body: str = Field(default="", max_length=1000)


class ConsoleApproveForm(ConsoleForm):
    proposal: str = Field(default="", max_length=12)


class ConsoleAdjustmentForm(ConsoleForm):
    debit_account: str = Field(default="", max_length=200)
    credit_account: str = Field(default="", max_length=200)
    amount: str = Field(default="", max_length=32)
    currency: str = Field(default="", max_length=3)
    reason: str = Field(default="", max_length=1000)


class StaffChoice(BaseModel):
    id: UUID
    name: str
