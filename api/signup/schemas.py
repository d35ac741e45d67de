from __future__ import annotations

from datetime import date
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import CountryCode, Email, Password, PersonName
from domain.onboarding import AccountType


class SignupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password
    full_name: PersonName
    country: CountryCode = Field(description="ISO 3166-1 alpha-2, e.g. DE")
    date_of_birth: date
    account_type: AccountType = AccountType.STANDARD
    referral_code: str | None = Field(default=None, min_length=1, max_length=32)


class SignupAccepted(BaseModel):
    client_id: UUID
    application_id: UUID
    status: str
