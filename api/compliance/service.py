"""What compliance sets on a client that the deposit checks read: KYC and screening status."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from api.compliance.schemas import KycChange, KycView
from api.policy import Principal
from db import audit
from db.queries.clients import client_or_not_found


async def set_kyc(
    session: AsyncSession, client_id: uuid.UUID, change: KycChange, by: Principal
) -> KycView:
    client = await client_or_not_found(session, client_id, lock=True)
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
