"""One change to a live MT5 account (`AccountChange`): leverage, group, trading rights or
closure. Its id, input and result, the `decide` update and `state` query the API reaches it by,
and each step's argument, result, policy and queue (the MT5 reads and writes run on the
account's server queue).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from contracts import policies
from contracts.kyc import OfficerDecision, StaffActor
from contracts.process import Process, Query, Update
from contracts.steps import Mt5Step, Step
from domain.accounts import AccountChangeKind, AccountChangeStatus, AccountStatus
from domain.frozen import Frozen as Contract
from domain.kyc import KycSla


def account_change_workflow_id(change_id: uuid.UUID) -> str:
    return f"account-change-{change_id}"


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


class Mt5AccountRead(Contract):
    """An MT5 account as `user/get` answers it: the `before` and `after` of a change."""

    login: int
    group: str
    leverage: int
    rights: int
    balance: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)


class AccountChangeResult(Contract):
    status: AccountChangeStatus
    before: Mt5AccountRead | None = None
    after: Mt5AccountRead | None = None
    reason: str | None = None


class AccountChangeView(Contract):
    """The `decide` update's result and the `state` query's answer."""

    change_id: uuid.UUID
    status: AccountChangeStatus
    escalated: bool = False
    decided_by: uuid.UUID | None = None
    reason: str | None = None


ACCOUNT_CHANGE = Process("AccountChange", AccountChangeInput, AccountChangeResult)
ACCOUNT_CHANGE_DECIDE = Update("decide", OfficerDecision, AccountChangeView)
ACCOUNT_CHANGE_STATE = Query("state", AccountChangeView)


# -- the steps -----------------------------------------------------------------------------------


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


class RecordChangeDecisionInput(Contract):
    change_id: uuid.UUID
    actor: StaffActor
    approve: bool
    reason: str
    at: datetime


class EscalateChangeInput(Contract):
    change_id: uuid.UUID
    at: datetime


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


load_account_change = Step("load_account_change", ChangeRef, AccountChangeFacts, policies.DATABASE)
record_account_change_decision = Step(
    "record_account_change_decision", RecordChangeDecisionInput, type(None), policies.DATABASE
)
escalate_account_change = Step(
    "escalate_account_change", EscalateChangeInput, type(None), policies.DATABASE
)
read_mt5_account = Mt5Step(
    "read_mt5_account", ReadMt5AccountInput, Mt5AccountRead, policies.MT5_WRITE
)
# Absolute values: a retry after a lost answer sets the same thing again.
apply_account_change = Mt5Step(
    "apply_account_change", ApplyChangeInput, Mt5AccountRead, policies.MT5_WRITE
)
record_account_change_applied = Step(
    "record_account_change_applied", RecordChangeAppliedInput, type(None), policies.DATABASE
)
mark_account_change_failed = Step(
    "mark_account_change_failed", MarkChangeFailedInput, type(None), policies.DATABASE
)
