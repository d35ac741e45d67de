"""The daily re-KYC sweep (`ReKycSweep`, run by the `rekyc-sweep-daily` Temporal Schedule): a
case for each approved client whose identity document or proof of address stops being valid
within the notice period; the sweep starts each case's review (`contracts.kyc_review`)."""

from __future__ import annotations

from pydantic import Field

from contracts import policies
from contracts.kyc_review import OpenedCases
from contracts.process import Process
from contracts.steps import Step
from domain.frozen import Frozen as Contract
from domain.kyc import KycSla

REKYC_SWEEP_SCHEDULE = "rekyc-sweep-daily"


class ReKycSweepInput(Contract):
    """The daily schedule's argument (written by `schedules.py` from `settings.kyc`)."""

    sla: KycSla = KycSla()


class ReKycSweepResult(Contract):
    cases_opened: int


REKYC_SWEEP = Process("ReKycSweep", ReKycSweepInput, ReKycSweepResult)


class ExpirySweepInput(Contract):
    key: str  # the sweep's own workflow id: a retried step opens the same cases
    limit: int = Field(default=200, ge=1, le=2000)


open_document_expiry_cases = Step(
    "open_document_expiry_cases", ExpirySweepInput, OpenedCases, policies.DATABASE
)
