"""The account-opening process as data: the workflow's input and the contract of each step.

Workflows and activities both speak these models; neither imports the other.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain.onboarding import AccountType


class Step(StrEnum):
    """Activity names, fixed so that renaming a Python function never breaks history."""

    RESERVE_MT5_LOGIN = "reserve_mt5_login"
    CREATE_MT5_USER = "create_mt5_user"
    DELETE_MT5_USER_IF_OURS = "delete_mt5_user_if_ours"
    CREDIT_DEMO_DEPOSIT = "credit_demo_deposit"
    RECORD_MT5_ACCOUNT = "record_mt5_account"
    MARK_APPLICATION_FAILED = "mark_application_failed"


class Contract(BaseModel):
    model_config = ConfigDict(frozen=True)


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
