from __future__ import annotations

from datetime import date
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import (
    AddressLine,
    City,
    CountryCode,
    Email,
    NewPassword,
    PersonName,
    Phone,
    PostalCode,
)
from domain.onboarding import AccountType


class Address(BaseModel):
    """Where the client lives (in `country`, the country of residence)."""

    model_config = ConfigDict(extra="forbid")

    line1: AddressLine = Field(description="street and house number")
    line2: AddressLine | None = Field(default=None, description="flat, floor, c/o ...")
    city: City
    # Required except in the few countries that have no postal codes (e.g. AE, HK, IE without
    # an Eircode); the service says which.
    postal_code: PostalCode | None = None


class SignupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: NewPassword
    full_name: PersonName
    country: CountryCode = Field(description="country of residence, ISO 3166-1 alpha-2, e.g. DE")
    nationality: CountryCode = Field(description="ISO 3166-1 alpha-2, e.g. DE")
    date_of_birth: date
    phone: Phone
    address: Address
    account_type: AccountType = Field(
        default=AccountType.STANDARD,
        description="the live account asked for; a demo account of this type opens at once",
    )
    referral_code: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="an introducing broker's referral code (optional): the client's live MT5"
        " accounts are attributed to that IB from their opening; an unknown code is a 422",
    )


class SignupAccepted(BaseModel):
    client_id: UUID
    application_id: UUID
    status: str
