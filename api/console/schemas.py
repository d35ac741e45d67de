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
    csrf: str = Field(default="", max_length=128)


class ConsoleHitReview(BaseModel):
    status: Literal["cleared", "confirmed"]
    # The page to come back to with an error.
    case_id: UUID | None = None
    reason: str = Field(default="", max_length=2000)
    csrf: str = Field(default="", max_length=128)
