"""Processors' webhooks: verified, recorded once per event id, matched to their payment and
signalled to its workflow, which decides what the event means.

The row and the signal go together: the signal is sent before the commit, and if the workflow
engine is unreachable the request fails whole (503) so the processor delivers it again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.temporal import TemporalConnector, signal_if_open
from api.webhooks.schemas import WebhookOutcome
from contracts import funds
from db.models import Payment, WebhookEvent
from db.unmatched_funds import queue_unmatched
from domain.payments import (
    FUNDS_ARRIVED,
    PaymentDirection,
    PaymentEvent,
    UnmatchedReason,
    WebhookRejected,
    unmatched_reason_for,
)
from psp_adapter.gateway import PaymentProvider

log = logging.getLogger(__name__)
# Real processors send a few kilobytes; anything far larger is not a webhook.
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Received:
    outcome: WebhookOutcome
    event_id: str | None = None
    reason: str | None = None
    # Why the event's money was queued as unmatched funds (None: it was not).
    queued: UnmatchedReason | None = None


async def receive(
    session: AsyncSession,
    temporal: TemporalConnector,
    provider: PaymentProvider,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> Received:
    try:
        event = _verified(provider, headers, body, now)
    except WebhookRejected as exc:
        reason = exc.detail[:500]
        session.add(
            WebhookEvent(
                provider=provider.name, outcome=WebhookOutcome.REJECTED.value, reason=reason
            )
        )
        log.warning("webhook from %s rejected: %s", provider.name, reason)
        return Received(WebhookOutcome.REJECTED, reason=reason)

    payment, why_not = await _matching_payment(session, event)
    if payment is None:
        return await _stored(
            session,
            event,
            WebhookOutcome.UNMATCHED,
            None,
            why_not,
            UnmatchedReason.UNKNOWN_REFERENCE,
        )
    # Read before the savepoint: a rolled-back savepoint may expire what was loaded in it.
    payment_id, workflow_id = payment.id, payment.workflow_id
    where = f"payment {payment.reference} is {payment.status}"
    if event.kind in FUNDS_ARRIVED and payment.direction != PaymentDirection.DEPOSIT:
        reason = f"{where}: money coming in names a {payment.direction}"
        return await _stored(
            session,
            event,
            WebhookOutcome.NEEDS_REVIEW,
            payment_id,
            reason,
            UnmatchedReason.NOT_A_DEPOSIT,
        )
    # If the workflow has finished, money it can no longer take is queued (why: its status).
    too_late = unmatched_reason_for(payment.status)
    # The savepoint keeps "accepted" only if the workflow took the signal.
    async with session.begin_nested() as accepted:
        if not await _record(session, event, WebhookOutcome.ACCEPTED, payment_id, None):
            return _logged(event, Received(WebhookOutcome.DUPLICATE, event.event_id))
        if await signal_if_open(temporal, workflow_id, funds.PAYMENT_EVENT, event):
            return _logged(event, Received(WebhookOutcome.ACCEPTED, event.event_id))
        await accepted.rollback()
    reason = f"{where} and its workflow has finished; a person must look at it"
    return await _stored(session, event, WebhookOutcome.NEEDS_REVIEW, payment_id, reason, too_late)


async def _stored(
    session: AsyncSession,
    event: PaymentEvent,
    outcome: WebhookOutcome,
    payment_id: uuid.UUID | None,
    reason: str | None,
    unmatched: UnmatchedReason | None = None,
) -> Received:
    """Store the event once; money it brings in that no deposit takes (`unmatched` says why)
    is queued for finance with an alert, once per event."""
    if not await _record(session, event, outcome, payment_id, reason):
        return _logged(event, Received(WebhookOutcome.DUPLICATE, event.event_id))
    queued = None
    if unmatched is not None and event.kind in FUNDS_ARRIVED:
        if await queue_unmatched(session, event, unmatched, payment_id, reason):
            queued = unmatched
    return _logged(event, Received(outcome, event.event_id, reason, queued))


def _verified(
    provider: PaymentProvider, headers: Mapping[str, str], body: bytes, now: datetime
) -> PaymentEvent:
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRejected(f"webhook body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return provider.verify_webhook(headers, body, now)
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        # Signed by the processor but not shaped as its events are.
        raise WebhookRejected(f"webhook body is malformed ({type(exc).__name__})") from exc


async def _matching_payment(
    session: AsyncSession, event: PaymentEvent
) -> tuple[Payment | None, str | None]:
    conditions = []
    if event.reference:
        conditions += [
            Payment.reference == event.reference,
            Payment.transfer_reference == event.reference,
        ]
    if event.provider_ref:
        conditions.append(Payment.provider_ref == event.provider_ref)
    if not conditions:
        return None, "the event names no reference"
    candidates = list(
        await session.scalars(
            select(Payment)
            .where(Payment.provider == event.provider, or_(*conditions))
            .order_by(Payment.created_at)
            .limit(2)
        )
    )
    if not candidates:
        return None, f"no {event.provider} payment has reference {event.reference!r}"
    if len(candidates) > 1:
        return None, f"several {event.provider} payments match reference {event.reference!r}"
    return candidates[0], None


async def _record(
    session: AsyncSession,
    event: PaymentEvent,
    outcome: WebhookOutcome,
    payment_id: uuid.UUID | None,
    reason: str | None,
) -> bool:
    """Store the event once per (provider, event id); False when it was already there."""
    stored = await session.scalar(
        insert(WebhookEvent)
        .values(
            provider=event.provider,
            event_id=event.event_id,
            kind=event.kind.value,
            outcome=outcome.value,
            reason=reason,
            payment_id=payment_id,
            payload=event.model_dump(mode="json"),
        )
        .on_conflict_do_nothing(index_elements=[WebhookEvent.provider, WebhookEvent.event_id])
        .returning(WebhookEvent.id)
    )
    return stored is not None


def _logged(event: PaymentEvent, received: Received) -> Received:
    log.info(
        "webhook %s %s from %s (%s): %s%s",
        event.event_id,
        event.kind.value,
        event.provider,
        event.reference,
        received.outcome.value,
        f" - {received.reason}" if received.reason else "",
    )
    return received
