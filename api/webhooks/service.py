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
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api import throttle
from api.context import RequestContext
from api.state import AppState
from api.temporal import TemporalConnector, signal_if_open
from api.webhooks.schemas import WebhookOutcome
from contracts import funds
from db import audit
from db.models import FinanceCase, Payment, WebhookEvent
from db.unmatched_funds import queue_unmatched
from domain.money_flows import MovementKind
from domain.payments import (
    FUNDS_ARRIVED,
    TOOK_MONEY,
    FinanceCaseStatus,
    PaymentDirection,
    PaymentEvent,
    PaymentEventKind,
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
    source_ip: str = "",
) -> Received:
    try:
        event = _verified(provider, headers, body, now)
    except WebhookRejected as exc:
        reason = exc.detail[:500]
        await _rejected(session, provider.name, reason, source_ip, now)
        log.warning("webhook from %s at %s rejected: %s", provider.name, source_ip, reason)
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
    # A bank transfer is identified by the reference the client quoted; its own id is the
    # bank's (and becomes the payment's once taken). Every other event names the processor's id
    # of the payment or payout BrokerFlow recorded when it opened it.
    by_reference_only = (
        payment.transfer_reference is not None and event.kind is PaymentEventKind.TRANSFER_RECEIVED
    )
    if (
        payment.provider_ref
        and not by_reference_only
        and event.provider_ref != payment.provider_ref
    ):
        # The right reference with another intent or payment id: not the payment we asked for
        # (matched on both, never on the reference alone). Nothing is signalled or credited.
        reason = (
            f"{where}: the event names {event.provider} id {event.provider_ref!r}, but the "
            f"payment was made as {payment.provider_ref!r}; not acted upon"
        )
        return await _stored(session, event, WebhookOutcome.NEEDS_REVIEW, payment_id, reason)
    if event.kind in FUNDS_ARRIVED and await _declined_before(session, payment_id):
        # Money after the processor declined: the deposit may have ended failed, and the money
        # is then unmatched; either way finance looks at it (a finance case, once per payment).
        await _open_case_after_decline(session, payment, event)
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
    if (
        event.kind in FUNDS_ARRIVED
        and payment.status in TOOK_MONEY
        and event.provider_ref == payment.provider_ref
    ):
        # The very payment the deposit took: when its webhook is late the deposit asks the
        # processor and takes the event from its answer, so this is the same money reported
        # again, stored once and never queued as a second payment.
        reason = f"{where}: the payment it took (found by asking the processor), reported again"
        return await _stored(session, event, WebhookOutcome.ACCEPTED, payment_id, reason)
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


REJECTED_SCOPE = "webhook:rejected"


def _rejection_keys(state: AppState, ip: str) -> tuple[throttle.ThrottleKey, ...]:
    limit = state.settings.auth_throttle.webhook_rejected_address
    return (throttle.ThrottleKey(throttle.ADDRESS, ip, limit),)


async def check_rejections(session: AsyncSession, state: AppState, ip: str) -> None:
    """429 while the address waits after sending too many rejected webhooks (nothing stored)."""
    await throttle.check(session, REJECTED_SCOPE, _rejection_keys(state, ip), state.clock())


async def count_rejection(state: AppState, context: RequestContext) -> None:
    await throttle.record_failure(
        state.sessions,
        state.settings.auth_throttle,
        REJECTED_SCOPE,
        _rejection_keys(state, context.ip),
        state.clock(),
        context,
    )


REJECTED_AGGREGATION = timedelta(hours=1)
SUCCEEDED_AFTER_DECLINE = "succeeded_after_decline"


async def _rejected(
    session: AsyncSession, provider: str, reason: str, source_ip: str, now: datetime
) -> None:
    """One row per processor, address and reason within the hour, its repeats counted: a flood
    of forged webhooks is evidence of one kind, not thousands of rows."""
    same = await session.scalar(
        select(WebhookEvent)
        .where(
            WebhookEvent.provider == provider,
            WebhookEvent.outcome == WebhookOutcome.REJECTED.value,
            WebhookEvent.source_ip == (source_ip or None),
            WebhookEvent.reason == reason,
            WebhookEvent.received_at > now - REJECTED_AGGREGATION,
        )
        .order_by(WebhookEvent.id.desc())
        .limit(1)
        .with_for_update()
    )
    if same is not None:
        same.repeats += 1
        same.last_received_at = now
        return
    session.add(
        WebhookEvent(
            provider=provider,
            outcome=WebhookOutcome.REJECTED.value,
            reason=reason,
            source_ip=source_ip[:64] or None,
            repeats=1,
            last_received_at=now,
        )
    )


async def _declined_before(session: AsyncSession, payment_id: uuid.UUID) -> bool:
    declined = await session.scalar(
        select(WebhookEvent.id)
        .where(
            WebhookEvent.payment_id == payment_id,
            WebhookEvent.kind == PaymentEventKind.PAYMENT_FAILED.value,
        )
        .limit(1)
    )
    return declined is not None


async def _open_case_after_decline(
    session: AsyncSession, payment: Payment, event: PaymentEvent
) -> None:
    reason = (
        f"{event.provider} reported {event.kind.value} ({event.event_id}, "
        f"{event.amount.amount} {event.amount.currency}) after it had declined payment "
        f"{payment.reference}; check with the processor whether the money was taken"
    )
    case_id = await session.scalar(
        insert(FinanceCase)
        .values(
            id=uuid.uuid4(),
            movement_kind=MovementKind.PAYMENT.value,
            movement_id=payment.id,
            reference=payment.reference,
            client_id=payment.client_id,
            kind=SUCCEEDED_AFTER_DECLINE,
            status=FinanceCaseStatus.OPEN.value,
            currency=event.amount.currency,
            amount_minor=event.amount.to_minor_units(),
            reason=reason,
            undone=[],
            not_undone=[],
        )
        .on_conflict_do_nothing(index_elements=["movement_kind", "movement_id", "kind"])
        .returning(FinanceCase.id)
    )
    if case_id is not None:
        audit.record(
            session,
            audit.system_actor(on_behalf_of=str(payment.client_id)),
            audit.Change(
                action="finance_case.opened",
                entity_type="finance_case",
                entity_id=str(case_id),
                after={
                    "movement": f"payment {payment.id}",
                    "reference": payment.reference,
                    "kind": SUCCEEDED_AFTER_DECLINE,
                    "amount": f"{event.amount.amount} {event.amount.currency}",
                    "event_id": event.event_id,
                },
                reason=reason,
            ),
        )
        log.warning("finance case %s opened (%s): %s", case_id, SUCCEEDED_AFTER_DECLINE, reason)


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
