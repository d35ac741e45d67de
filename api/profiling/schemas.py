"""Client profiles and book decisions as the API shows them, and the dealer's override."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.risk.schemas import Share
from api.schemas import Note
from db.models import BookDecision, ClientProfileRow
from domain.profiling import Profile

DecidedBook = Literal["A", "B", "hybrid"]


def _share(value: Any) -> str | None:
    return None if value is None else format(value.normalize(), "f")


class AcceptBook(BaseModel):
    """Accept the profile's suggested book (a note is optional)."""

    model_config = ConfigDict(extra="forbid")

    reason: Note | None = None


class OverrideBook(BaseModel):
    """Another book than the suggestion: `hybrid` with `a_share` (0 < share < 1), and why."""

    model_config = ConfigDict(extra="forbid")

    book: DecidedBook
    a_share: Share | None = None
    reason: Note


class DecisionView(BaseModel):
    """`moving` until the account is in the book's MT5 group (`applied`); `failed` with the
    reason when MT5 refused the move."""

    id: uuid.UUID
    server: str
    login: int
    kind: Literal["accept", "override"]
    book: DecidedBook
    a_share: str | None
    target_group: str
    profile: str
    suggested_book: str
    reason: str | None
    status: Literal["moving", "applied", "failed"]
    decided_by: uuid.UUID
    created_at: datetime
    finished_at: datetime | None
    failure_reason: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def of(cls, row: BookDecision) -> DecisionView:
        return cls(
            id=row.id,
            server=row.server,
            login=row.login,
            kind=row.kind,
            book=row.book,
            a_share=_share(row.a_share),
            target_group=row.target_group,
            profile=row.profile,
            suggested_book=row.suggested_book,
            reason=row.reason,
            status=row.status,
            decided_by=row.decided_by,
            created_at=row.created_at,
            finished_at=row.finished_at,
            failure_reason=row.failure_reason,
            before=row.before,
            after=row.after,
        )


class ProfileView(BaseModel):
    server: str
    login: int
    profile: Profile
    suggested_book: DecidedBook
    suggested_a_share: str
    book_reason: str
    explanation: str
    trades: int
    net_profit: str
    window_from: datetime
    window_to: datetime
    computed_at: datetime
    latest_decision: DecisionView | None = None

    @classmethod
    def of(cls, row: ClientProfileRow, latest: BookDecision | None = None) -> ProfileView:
        return cls(
            server=row.server,
            login=row.login,
            profile=Profile(row.profile),
            suggested_book=row.suggested_book,
            suggested_a_share=format(row.suggested_a_share.normalize(), "f"),
            book_reason=row.book_reason,
            explanation=row.explanation,
            trades=row.trades,
            net_profit=format(row.net_profit, "f"),
            window_from=row.window_from,
            window_to=row.window_to,
            computed_at=row.computed_at,
            latest_decision=None if latest is None else DecisionView.of(latest),
        )


class ConditionView(BaseModel):
    metric: str
    value: str | int | None
    comparison: str
    threshold: str | int
    met: bool


class CurrentBook(BaseModel):
    """The account's book in the risk desk's `account_books` (none set: B, `default`)."""

    book: str
    a_share: str | None
    default: bool = False


class ProfileDetail(ProfileView):
    conditions: list[ConditionView]
    metrics: dict[str, Any]
    current_book: CurrentBook
    decisions: list[DecisionView] = Field(default_factory=list)


class ProfilePage(BaseModel):
    items: list[ProfileView]
    total: int
    limit: int
    offset: int


class ConsoleDecisionForm(BaseModel):
    csrf: str = ""
    book: Literal["", "A", "B", "hybrid"] = ""
    a_share: str = ""
    reason: str = ""
