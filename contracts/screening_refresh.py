"""A new sanctions or PEP list (`ScreeningListRefresh`): load it as the active list of its
source, re-screen every client against the active lists, and open a LIST_CHANGE case for each
new potential match, whose review it starts (`contracts.kyc_review`)."""

from __future__ import annotations

import uuid

from pydantic import Field

from contracts import policies
from contracts.kyc import StaffActor
from contracts.kyc_review import OpenedCases
from contracts.process import Process
from contracts.steps import Step
from domain.frozen import Frozen as Contract
from domain.kyc import KycSla


def screening_refresh_workflow_id(digest: str) -> str:
    return f"screening-list-{digest[:32]}"


class RefreshProgress(Contract):
    """Where a refresh that continued as new picks up: its list is loaded, clients before
    `after` are screened."""

    list_id: int
    after: uuid.UUID
    batches: int
    cases_opened: int


class ScreeningRefreshInput(Contract):
    """Load one published list file (kept in the document store under `storage_key`), make it
    the active list of its source, and re-screen every client against it."""

    source: str
    storage_key: str
    digest: str
    uploaded_by: StaffActor | None = None
    # Service levels of the cases the re-screening opens (from `settings.kyc`).
    sla: KycSla = KycSla()
    # A run screens this many batches, then continues as new with its progress, so a refresh
    # over millions of clients keeps each history small.
    batches_per_run: int = Field(default=500, ge=1)
    progress: RefreshProgress | None = None


class ScreeningRefreshResult(Contract):
    list_id: int
    clients_screened_batches: int
    cases_opened: int


SCREENING_REFRESH = Process("ScreeningListRefresh", ScreeningRefreshInput, ScreeningRefreshResult)


class LoadedList(Contract):
    list_id: int
    source: str
    party_count: int
    # False when the same file had been loaded before (the list is made active again).
    newly_loaded: bool


class RescreenInput(Contract):
    list_id: int  # the list whose arrival caused the re-screening
    after: uuid.UUID | None = None  # clients are taken in id order, after this one
    limit: int = Field(default=200, ge=1, le=2000)


class RescreenBatch(Contract):
    # Clients with a potential match (>= ALERT_THRESHOLD) that none of their cases holds yet.
    flagged: tuple[uuid.UUID, ...] = ()
    # Where the next batch starts; None when this was the last one.
    next_after: uuid.UUID | None = None


class OpenCasesInput(Contract):
    client_ids: tuple[uuid.UUID, ...]
    # The business key of the opening (a list digest): the same key opens the same case ids.
    key: str


# The list file is parsed and its parties stored whole: one long attempt, retried like the
# database.
load_screening_list = Step("load_screening_list", ScreeningRefreshInput, LoadedList, policies.BULK)
rescreen_clients = Step("rescreen_clients", RescreenInput, RescreenBatch, policies.BULK)
open_list_change_cases = Step(
    "open_list_change_cases", OpenCasesInput, OpenedCases, policies.DATABASE
)
