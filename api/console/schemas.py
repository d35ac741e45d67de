"""The console's forms: what a page posts, validated as the API's bodies are."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field


class ConsoleLogin(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=128)
    totp_code: str = Field(max_length=6)


class ConsoleDecision(BaseModel):
    decision: Literal["approve", "reject"]
    reason: str = Field(max_length=1000)
    csrf: str = Field(default="", max_length=128)


class ConsoleCaseDecision(BaseModel):
    action: Literal["approve", "reject", "request_info"]
    reason: str = Field(default="", max_length=2000)
    info_needed: str = Field(default="", max_length=4000)
    # Enhanced due diligence, to approve a confirmed politically exposed person.
    source_of_wealth: str = Field(default="", max_length=2000)
    source_of_funds: str = Field(default="", max_length=2000)
    public_function: str = Field(default="", max_length=2000)
    relationship_purpose: str = Field(default="", max_length=2000)
    csrf: str = Field(default="", max_length=128)

    def enhanced_due_diligence(self) -> dict[str, str] | None:
        fields = {
            "source_of_wealth": self.source_of_wealth,
            "source_of_funds": self.source_of_funds,
            "public_function": self.public_function,
            "relationship_purpose": self.relationship_purpose,
        }
        return fields if any(v.strip() for v in fields.values()) else None


class ConsoleHitReview(BaseModel):
    status: Literal["cleared", "confirmed"]
    # The page to come back to with an error.
    case_id: UUID | None = None
    reason: str = Field(default="", max_length=2000)
    csrf: str = Field(default="", max_length=128)
