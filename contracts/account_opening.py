"""Opening an MT5 account (demo after sign-up, live after KYC): the workflow's input and result,
and each step's argument, result, policy and queue.

Workflows and activities both speak these models; neither imports the other.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Literal
from uuid import UUID

from contracts import policies
from contracts.process import Process
from contracts.steps import Mt5Step, Step
from domain.frozen import Frozen as Contract
from domain.onboarding import AccountType


def account_opening_workflow_id(application_id: UUID) -> str:
    return f"account-opening-{application_id}"


class AccountTerms(Contract):
    """The MT5 group, leverage and deposit currency an account is opened with."""

    group: str
    leverage: int
    currency: str


class AccountOpeningInput(Contract):
    application_id: UUID
    client_id: UUID
    account_type: AccountType
    mt5_server: str
    # A demo account gets the demo terms of its account type and a demo deposit; a live one
    # gets `terms` (from `domain.account_terms.live_terms`), the default live rights, no money.
    kind: Literal["demo", "live"] = "demo"
    terms: AccountTerms | None = None


class AccountOpeningResult(Contract):
    login: int
    server: str


class ReserveLoginInput(Contract):
    application_id: UUID
    # A login MT5 already gave to somebody else: hand out the next one instead.
    replacing: int | None = None


class CreateMt5UserInput(Contract):
    application_id: UUID
    login: int
    group: str
    leverage: int
    # `Rights` to create the user with; None: the server's default (demo accounts).
    rights: int | None = None


class CreateMt5UserOutcome(StrEnum):
    CREATED = "created"
    LOGIN_TAKEN = "login_taken"


class DeleteMt5UserInput(Contract):
    application_id: UUID


class CreditDemoDepositInput(Contract):
    application_id: UUID
    login: int
    amount: Decimal
    currency: str


class RecordMt5AccountInput(Contract):
    application_id: UUID
    login: int
    group: str
    leverage: int
    currency: str
    rights: int | None = None


class MarkApplicationFailedInput(Contract):
    application_id: UUID
    reason: str


ACCOUNT_OPENING = Process("AccountOpening", AccountOpeningInput, AccountOpeningResult)

reserve_mt5_login = Step("reserve_mt5_login", ReserveLoginInput, int, policies.DATABASE)
create_mt5_user = Mt5Step(
    "create_mt5_user", CreateMt5UserInput, CreateMt5UserOutcome, policies.MT5_WRITE
)
# Looked up by its marker before it is deleted: never somebody else's user.
delete_mt5_user_if_ours = Mt5Step(
    "delete_mt5_user_if_ours", DeleteMt5UserInput, type(None), policies.MT5_COMPENSATION
)
credit_demo_deposit = Mt5Step(
    "credit_demo_deposit", CreditDemoDepositInput, int, policies.MT5_WRITE
)
record_mt5_account = Step(
    "record_mt5_account", RecordMt5AccountInput, type(None), policies.DATABASE
)
mark_application_failed = Step(
    "mark_application_failed", MarkApplicationFailedInput, type(None), policies.DATABASE
)
