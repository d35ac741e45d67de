from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from api.compliance import service
from api.compliance.schemas import KycChange, KycView
from api.deps import SessionDep, StateDep
from api.finance import service as finance_service
from api.finance.schemas import DecisionRequest, DecisionResult
from api.policy import ComplianceOfficer
from api.problems import PAYMENT_DECISION_ERRORS, error_responses
from domain.payments import PaymentDirection

router = APIRouter(prefix="/v1/compliance", tags=["compliance"])


@router.post("/deposits/{payment_id}/decision", responses=PAYMENT_DECISION_ERRORS)
async def decide_deposit(
    payment_id: UUID,
    body: DecisionRequest,
    officer: ComplianceOfficer,
    session: SessionDep,
    state: StateDep,
) -> DecisionResult:
    """Release a held deposit to its client, or reject it (the money goes back to the payer)."""
    return await finance_service.decide(
        session, state.temporal, officer, payment_id, PaymentDirection.DEPOSIT, body
    )


@router.put(
    "/clients/{client_id}/kyc",
    responses=error_responses({404: "no such client"}),
    deprecated=True,
)
async def set_client_kyc(
    client_id: UUID, body: KycChange, officer: ComplianceOfficer, session: SessionDep
) -> KycView:
    """Deprecated: a client's KYC status comes from their KYC case's decision
    (`POST /v1/compliance/kyc/cases/{case_id}/decision`). Sets a client's KYC and
    sanctions-screening status by hand (audited); held deposits are not re-checked by this:
    decide them."""
    return await service.set_kyc(session, client_id, body, officer)
