"""What compliance sets on a client that the deposit checks read: KYC and screening status."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.compliance.schemas import KycChange, KycView
from api.policy import Principal
from db import audit
from db.models import ScreeningHit
from db.queries.clients import client_or_not_found
from domain.errors import Conflict
from domain.payment_checks import KycStatus


async def set_kyc(
    session: AsyncSession, client_id: uuid.UUID, change: KycChange, by: Principal
) -> KycView:
    client = await client_or_not_found(session, client_id, lock=True)
    if change.kyc_status is KycStatus.APPROVED and client.kyc_status != KycStatus.APPROVED.value:
        await _no_unresolved_hits(session, client_id)
    before = {"kyc_status": client.kyc_status, "screening_status": client.screening_status}
    after = {
        "kyc_status": change.kyc_status.value,
        "screening_status": change.screening_status.value,
    }
    if after != before:
        client.kyc_status = change.kyc_status.value
        client.screening_status = change.screening_status.value
        audit.record(
            session,
            by.actor(),
            audit.Change(
                action="client.kyc_updated",
                entity_type="client",
                entity_id=str(client.id),
                before=before,
                after=after,
                reason=change.reason,
            ),
        )
        await session.flush()
    return KycView(client_id=client.id, **after)


async def _no_unresolved_hits(session: AsyncSession, client_id: uuid.UUID) -> None:
    """By hand as through a case: an open hit, a confirmed sanctions match or a confirmed PEP
    (whose approval needs the case's enhanced due diligence) keeps the client unapproved."""
    hits = list(
        await session.scalars(
            select(ScreeningHit).where(
                ScreeningHit.client_id == client_id, ScreeningHit.status.in_(("open", "confirmed"))
            )
        )
    )
    if hits:
        raise Conflict(
            f"{len(hits)} screening hit(s) of this client are open or confirmed; review them "
            "and decide through the client's KYC case",
            hits=[
                {"id": str(h.id), "source": h.source, "status": h.status, "is_pep": h.is_pep}
                for h in hits
            ],
        )
