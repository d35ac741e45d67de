from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict

from api.schemas import Reason
from domain.payment_checks import KycStatus, ScreeningStatus


class KycChange(BaseModel):
    """Interim: set by a compliance officer until KYC has its own workflow."""

    model_config = ConfigDict(extra="forbid")

    kyc_status: KycStatus
    screening_status: ScreeningStatus
    reason: Reason


class KycView(BaseModel):
    client_id: UUID
    kyc_status: str
    screening_status: str
