"""The console's forms: what a page posts, validated as the API's bodies are."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, WithJsonSchema

# A refused log-in answers the log-in page again, with the reason, at the refusal's status
# (api/openapi.py keeps a declared text/html; it adds `Retry-After` to the 429).
_LOGIN_PAGE_AGAIN: dict[str, Any] = {"text/html": {"schema": {"type": "string"}}}
LOGIN_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {
        "description": "wrong credentials: the log-in page again, with the reason",
        "content": _LOGIN_PAGE_AGAIN,
    },
    403: {
        "description": "the account may not log in here (disabled, or an address the staff "
        "user's IP allowlist refuses): the log-in page again, with the reason",
        "content": _LOGIN_PAGE_AGAIN,
    },
    429: {
        "description": "too many attempts: the log-in page again, with the reason",
        "content": _LOGIN_PAGE_AGAIN,
    },
}


class ConsoleLogin(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=128)
    totp_code: str = Field(max_length=6)


class ConsoleIbLogin(BaseModel):
    """An introducing broker's log-in to its portal pages: email and password, as the API's."""

    email: str = Field(max_length=254)
    password: str = Field(max_length=128)


class ConsoleDecision(BaseModel):
    decision: Literal["approve", "reject"]
    reason: str = Field(max_length=1000)
    csrf: str = Field(default="", max_length=128)


class ConsolePayAgain(BaseModel):
    """A finance officer's request to pay again an IB payout MT5 refused (`needs_attention`)."""

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
    # Documented as a plain uuid string: the form sends it, or leaves it out.
    case_id: Annotated[UUID | None, WithJsonSchema({"type": "string", "format": "uuid"})] = None
    reason: str = Field(default="", max_length=2000)
    csrf: str = Field(default="", max_length=128)


# -- what the console's lists show ---------------------------------------------------------------


class Person(BaseModel):
    """Who an id stands for, as a person reads it: the name and email, the id kept for the
    hover title and the detail pages."""

    id: str
    name: str
    email: str
    kind: Literal["client", "staff", "unknown"] = "unknown"

    @property
    def label(self) -> str:
        return f"{self.name} <{self.email}>" if self.email else self.name


class Paging(BaseModel):
    """One page of a console list: where it starts, how many it shows, how many there are (or
    whether another page follows, when counting would cost a second scan)."""

    offset: int
    limit: int
    shown: int
    total: int | None = None
    more: bool = False

    @property
    def has_next(self) -> bool:
        return self.more if self.total is None else self.offset + self.shown < self.total

    @property
    def has_previous(self) -> bool:
        return self.offset > 0

    @property
    def first(self) -> int:
        return self.offset + 1 if self.shown else 0

    @property
    def last(self) -> int:
        return self.offset + self.shown


class AccountLabel(BaseModel):
    """An MT5 account as a person should read it: live or demo (the account's own kind, never
    the server's name), its login and the server it is on, with the server's kind."""

    kind: str  # "live", "demo", or "unknown" when BrokerFlow has no row for it
    login: int
    server: str
    server_kind: str | None = None

    @property
    def text(self) -> str:
        server = f", a {self.server_kind} server" if self.server_kind else ""
        on = f"server {self.server}{server}"
        return f"{self.kind.upper()} {self.login} ({on})"


class LedgerLine(BaseModel):
    """A ledger account as finance reads it: whose it is, what it is for, and its balance on
    the side it sits (debit or credit), never a signed number to decode."""

    code: str
    kind: str
    currency: str
    purpose: str
    owner: Person | None = None
    account: AccountLabel | None = None
    debit: str | None = None
    credit: str | None = None


class LedgerPosting(BaseModel):
    line: LedgerLine
    debit: str | None = None
    credit: str | None = None


class LedgerEntryLine(BaseModel):
    id: str
    booked_at: datetime
    description: str
    idempotency_key: str
    reverses_id: str | None
    debit: str | None = None  # what the entry did to the account asked for
    credit: str | None = None
    postings: list[LedgerPosting]
