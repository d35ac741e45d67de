"""The unmatched-funds queue's one writer of new items (docs/unmatched-funds.md): the webhook
service (money for no open deposit) and the deposit workflow's step (a second payment on its
reference) queue through it, so an item looks the same whichever found it."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db import audit
from db.models import UnmatchedFunds
from domain.payments import PaymentEvent, UnmatchedReason, UnmatchedStatus, unmatched_reference

# The alert: operations watch this logger (a WARNING per queued item).
alerts = logging.getLogger("brokerflow.unmatched_funds")


async def queue_unmatched(
    session: AsyncSession,
    event: PaymentEvent,
    reason: UnmatchedReason,
    payment_id: uuid.UUID | None,
    detail: str | None,
) -> bool:
    """The event's row in the unmatched-funds queue with its audit row, once per (provider,
    event id), and the alert; False when it was queued before."""
    item_id = uuid.uuid4()
    reference = unmatched_reference(str(item_id))
    stored = await session.scalar(
        insert(UnmatchedFunds)
        .values(
            id=item_id,
            reference=reference,
            provider=event.provider,
            event_id=event.event_id,
            event_kind=event.kind.value,
            provider_ref=event.provider_ref,
            event_reference=event.reference,
            currency=event.amount.currency,
            amount_minor=event.amount.to_minor_units(),
            payer_name=event.payer_name or None,
            payment_id=payment_id,
            reason=reason.value,
            detail=detail[:2000] if detail else None,
            status=UnmatchedStatus.OPEN.value,
        )
        .on_conflict_do_nothing(index_elements=[UnmatchedFunds.provider, UnmatchedFunds.event_id])
        .returning(UnmatchedFunds.id)
    )
    if stored is None:
        return False
    amount = f"{event.amount.amount} {event.amount.currency}"
    audit.record(
        session,
        audit.system_actor(),
        audit.Change(
            action="unmatched_funds.opened",
            entity_type="unmatched_funds",
            entity_id=str(item_id),
            after={
                "status": UnmatchedStatus.OPEN.value,
                "reference": reference,
                "provider": event.provider,
                "event_id": event.event_id,
                "event_reference": event.reference,
                "amount": amount,
                "reason": reason.value,
                "payment_id": str(payment_id) if payment_id else None,
            },
            reason=detail,
        ),
    )
    alerts.warning(
        "unmatched funds queued: %s %s from %s event %s (reference %r): %s",
        amount,
        reference,
        event.provider,
        event.event_id,
        event.reference,
        reason.value,
    )
    return True
