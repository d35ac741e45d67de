from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from api.schemas import Email, Mt5Login, NewPassword, PersonName, Reason
from contracts.ib_payout import PayoutFrequency
from domain.ib.document import PlanVersion

ReferralCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{3,32}$")]
PlanId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
ServerName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class IbCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    name: PersonName
    password: NewPassword
    # Optional: BrokerFlow generates one (10 characters, about 50 bits of randomness) when absent.
    referral_code: ReferralCode | None = None
    # Optional: its place in the tree, its plan and how often it is paid.
    parent_id: UUID | None = None
    plan_id: PlanId | None = None
    payout_frequency: PayoutFrequency = PayoutFrequency.MONTHLY


class IbView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    email: str
    name: str
    referral_code: str
    created_at: datetime
    parent_id: UUID | None = None
    plan_id: str | None = None
    payout_frequency: str = PayoutFrequency.MONTHLY.value
    payout_mt5_server: str | None = None
    payout_mt5_login: int | None = None


class ReferredClient(BaseModel):
    """What an IB may know of a client it introduced: no contact or identity details."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    full_name: str
    country: str
    status: str
    created_at: datetime


class ReferralCodeRegenerate(BaseModel):
    """A new generated code replaces the IB's: sign-ups with the old one are refused from now
    on; clients already referred stay its clients."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason


# -- tree and terms (admins) ---------------------------------------------------------------------


class ParentChange(BaseModel):
    """The IB's new parent (null: it moves to the top of the tree)."""

    model_config = ConfigDict(extra="forbid")

    parent_id: UUID | None
    reason: Reason


class PayoutDestinationSet(BaseModel):
    """`wallet`, or `mt5` with the server and login of an MT5 account BrokerFlow opened."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["wallet", "mt5"]
    server: ServerName | None = None
    login: Mt5Login | None = None

    @model_validator(mode="after")
    def _mt5_names_the_account(self) -> PayoutDestinationSet:
        if self.kind == "mt5" and (self.server is None or self.login is None):
            raise ValueError("an MT5 destination needs its server and login")
        if self.kind == "wallet" and (self.server is not None or self.login is not None):
            raise ValueError("a wallet destination takes no server or login")
        return self


class IbTermsChange(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    plan_id: PlanId | None = None
    payout_frequency: PayoutFrequency | None = None
    payout_to: PayoutDestinationSet | None = None
    reason: Reason

    @model_validator(mode="after")
    def _something_changes(self) -> IbTermsChange:
        if not self.model_fields_set - {"reason"}:
            raise ValueError("give plan_id, payout_frequency or payout_to")
        return self


# -- plans (finance officers) --------------------------------------------------------------------


class PlanTerms(PlanVersion):
    """A plan version's terms as `python -m ib.preview` reads them (docs/ib-commissions.md):
    the domain's own model, so the document lists what is checked. Its `version` is the
    server's to number (given or not). Some rules are checked beyond what a schema can say:
    a pool's shares add up to at most 1, a rule's fields fit its basis, the payout currency is
    one BrokerFlow books."""

    version: int | None = None  # type: ignore[assignment]


class PlanCreate(BaseModel):
    """A plan and its first version, `terms` as `python -m ib.preview` reads a plan version
    (docs/ib-commissions.md); its `version` is 1."""

    model_config = ConfigDict(extra="forbid")

    id: PlanId
    name: PersonName
    terms: PlanTerms
    reason: Reason


class PlanVersionCreate(BaseModel):
    """The next version: `terms` with its `from` (trade-server-clock Unix seconds) after now and
    after the newest version's; its `version` number is the next one (given or not)."""

    model_config = ConfigDict(extra="forbid")

    terms: PlanTerms
    reason: Reason


class PlanVersionView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    effective_from: int
    terms: dict[str, Any]
    created_at: datetime


class PlanView(BaseModel):
    id: str
    name: str
    created_at: datetime
    versions: list[PlanVersionView]


# -- fraud flags (finance) -----------------------------------------------------------------------


class FraudFlagView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ib_id: UUID
    rule: str
    evidence_key: str
    detail: str
    evidence: dict[str, Any]
    server: str | None
    login: int | None
    client_id: UUID | None
    detected_at: datetime
    cleared_at: datetime | None
    cleared_by: UUID | None
    cleared_reason: str | None


class FraudFlagClear(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason
