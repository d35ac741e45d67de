"""Client profiling and the dealer's book decision (issue 15; docs/risk-profiling.md, "Stored
profiles and the dealer's decision").

`ClientProfiling` (run per MT5 server by its `client-profiling-<server>` Temporal Schedule every
`profiling.interval`): one step on the server's queue reads the deals of the last
`profiling.window` from the database and the broker's quotes around their entries
(`tick/history`), profiles every account (`domain.profiling`) and stores each one's latest
profile (one row per account: a retried run writes the same rows again).

`BookMove` (started by the API when a dealer accepts or overrides a suggested book): the MT5
user is read, moved to the book's MT5 group (`user/update` with the absolute group, the account
change's own MT5 steps), read back, and the decision, the account row, `account_books` and the
audit entry are written together; a refusal by MT5 marks the decision failed with its reason.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pydantic import Field

from contracts import policies
from contracts.account_change import Mt5AccountRead
from contracts.process import Process
from contracts.steps import Mt5Step, Step
from domain.frozen import Frozen as Contract


def client_profiling_schedule_id(server: str) -> str:
    return f"client-profiling-{server}"


def book_move_workflow_id(decision_id: uuid.UUID) -> str:
    return f"book-move-{decision_id}"


class ClientProfilingInput(Contract):
    """The schedule's argument (written by `schedules.py` from `settings.profiling`)."""

    server: str
    window: timedelta = timedelta(days=7)
    max_ticks_per_symbol: int = 200_000


class ProfileServerInput(Contract):
    server: str
    window: timedelta = timedelta(days=7)
    max_ticks_per_symbol: int = 200_000
    # The window's end; None: the time the step runs (a schedule's run).
    until: datetime | None = None


class ProfilesStored(Contract):
    accounts: int = 0
    deals: int = 0
    ticks: int = 0
    # Symbols whose quotes were cut at `max_ticks_per_symbol` (their later entries lack quotes).
    truncated_symbols: list[str] = Field(default_factory=list)
    by_profile: dict[str, int] = Field(default_factory=dict)


CLIENT_PROFILING = Process("ClientProfiling", ClientProfilingInput, ProfilesStored)

# Reads the window's deals and quotes, profiles, upserts one row per account: heartbeating.
profile_server_accounts = Mt5Step(
    "profile_server_accounts", ProfileServerInput, ProfilesStored, policies.BULK
)


# -- the dealer's decision: BookMove --------------------------------------------------------------


class BookMoveInput(Contract):
    decision_id: uuid.UUID
    server: str
    login: int
    group: str


class BookMoveResult(Contract):
    status: str  # applied | failed
    before: Mt5AccountRead | None = None
    after: Mt5AccountRead | None = None
    reason: str | None = None


BOOK_MOVE = Process("BookMove", BookMoveInput, BookMoveResult)


class RecordBookMovedInput(Contract):
    decision_id: uuid.UUID
    before: Mt5AccountRead
    after: Mt5AccountRead
    at: datetime


class MarkBookMoveFailedInput(Contract):
    decision_id: uuid.UUID
    reason: str
    error_type: str
    at: datetime


# The decision applied, the account row's group, `account_books` and the audit entry, in one
# transaction (a second call for an applied decision does nothing).
record_book_moved = Step("record_book_moved", RecordBookMovedInput, type(None), policies.DATABASE)
mark_book_move_failed = Step(
    "mark_book_move_failed", MarkBookMoveFailedInput, type(None), policies.DATABASE
)
