"""What the client sends and sees while onboarding: verification, questionnaire, documents, KYC,
and changes to its live accounts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from api.schemas import Stripped
from db.models import AccountChange, ClientDocument, KycCase
from domain.appropriateness import QUESTIONNAIRE_VERSION, QUESTIONS
from domain.documents import DocumentKind

# -- email verification -------------------------------------------------------------------------

# What `domain.email_verification.make_token` writes, and all the service reads as well-formed:
# the client id (32 hex digits), the expiry (Unix seconds) and the HMAC-SHA256 (43 base64url
# characters). Another text is a 422; a well-formed one that does not verify a 404 or 410.
VERIFICATION_TOKEN_PATTERN = r"^[0-9a-fA-F]{32}\.[0-9]{1,12}\.[A-Za-z0-9_-]{43}$"
VerificationToken = Annotated[
    str, StringConstraints(min_length=78, max_length=89, pattern=VERIFICATION_TOKEN_PATTERN)
]


class EmailVerified(BaseModel):
    email: str
    email_verified_at: datetime
    # False when the address had already been verified (the link was followed again).
    newly_verified: bool


class VerificationMailSent(BaseModel):
    email: str
    # How many more links may be asked for within the hour.
    remaining_this_hour: int


# -- questionnaire ------------------------------------------------------------------------------


class OptionView(BaseModel):
    id: str
    text: str


class QuestionView(BaseModel):
    id: str
    kind: str
    text: str
    options: list[OptionView]


QuestionId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
OptionId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _answers_schema() -> dict[str, Any]:
    """Every question of the domain's questionnaire, each answered with one of its option ids,
    and nothing else: what `domain.appropriateness` checks, written from its own definition."""
    return {
        "type": "object",
        "properties": {
            q.id: {"type": "string", "enum": [option.id for option in q.options]} for q in QUESTIONS
        },
        "required": [q.id for q in QUESTIONS],
        "additionalProperties": False,
    }


class QuestionnaireSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Only the current version is answered (another is refused by the domain with a reason).
    version: Annotated[str, WithJsonSchema({"type": "string", "enum": [QUESTIONNAIRE_VERSION]})] = (
        Field(default=QUESTIONNAIRE_VERSION, max_length=16, description="the version answered")
    )
    # Every question of the version, answered with one of its option ids (source of funds and
    # expected deposits are questions too); the domain refuses anything else with the reason.
    answers: Annotated[dict[QuestionId, OptionId], WithJsonSchema(_answers_schema())] = Field(
        max_length=100
    )
    requested_professional: bool = Field(
        default=False,
        description="ask to be treated as an elective professional client (MiFID II Annex II)",
    )


class QuestionnaireResult(BaseModel):
    id: UUID
    version: str
    score: int
    max_score: int
    outcome: str
    category: str
    requested_professional: bool
    source_of_funds: str
    # The highest account leverage without a compliance decision (None: none is offered).
    leverage_cap: int | None
    # The highest the regulator allows for the client's region and category.
    regulatory_leverage_cap: int | None
    refused_products: list[str]
    # Why the client's live account type is refused, when it is.
    product_refused: str | None = None
    warnings: list[str]
    created_at: datetime


class QuestionnaireView(BaseModel):
    version: str
    questions: list[QuestionView]
    # The client's newest answers, when there are any.
    answers: dict[str, str] | None = None
    result: QuestionnaireResult | None = None


# -- documents ----------------------------------------------------------------------------------


class DocumentForm(BaseModel):
    """The fields of the multipart upload besides `file`."""

    model_config = ConfigDict(extra="forbid")

    kind: DocumentKind
    issued_on: date | None = None
    expires_on: date | None = None


class DocumentView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    kind: str
    status: str
    filename: str
    content_type: str
    size_bytes: int
    pages: int
    sha256: str
    issued_on: date | None
    expires_on: date | None
    valid_until: date
    created_at: datetime

    @classmethod
    def of(cls, row: ClientDocument) -> DocumentView:
        return cls.model_validate(row)


# -- KYC ----------------------------------------------------------------------------------------


class KycCaseView(BaseModel):
    id: UUID
    reason: str
    status: str
    account_type: str
    # What compliance asked for, while the case waits for the client.
    info_needed: str | None
    submitted_at: datetime
    decided_at: datetime | None

    @classmethod
    def of(cls, case: KycCase) -> KycCaseView:
        return cls(
            id=case.id,
            reason=case.reason,
            status=case.status,
            account_type=case.account_type,
            info_needed=case.info_needed,
            submitted_at=case.created_at,
            decided_at=case.decided_at,
        )


class KycOverview(BaseModel):
    """Where the client stands: its KYC status, its newest case, and what is still missing
    before it can submit (empty when nothing is)."""

    kyc_status: str
    case: KycCaseView | None
    missing: list[str]


NoteText = Annotated[str, Stripped(0, 2000)]


class KycInfoSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: NoteText = ""
    document_ids: list[UUID] = Field(default_factory=list, max_length=20)


# -- account changes ----------------------------------------------------------------------------


class LeverageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    leverage: int = Field(ge=1, le=10_000, description="the new leverage: 30 means 1:30")


class CloseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: NoteText | None = None


class AccountChangeView(BaseModel):
    id: UUID
    login: int
    kind: str
    status: str
    requested: dict[str, object]
    before: dict[str, object] | None
    reason: str | None
    failure_reason: str | None
    decided_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, change: AccountChange, login: int) -> AccountChangeView:
        return cls(
            id=change.id,
            login=login,
            kind=change.kind,
            status=change.status,
            requested=dict(change.requested),
            before=dict(change.before) if change.before is not None else None,
            reason=change.reason,
            failure_reason=change.failure_reason,
            decided_at=change.decided_at,
            created_at=change.created_at,
        )
