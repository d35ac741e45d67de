from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class WebhookOutcome(StrEnum):
    """What became of a webhook. Every one but `duplicate` is stored in webhook_events."""

    ACCEPTED = "accepted"  # verified, matched, and signalled to its payment's workflow
    DUPLICATE = "duplicate"  # this event id was received before: acted on once only
    UNMATCHED = "unmatched"  # verified, but no payment of this processor has its reference
    NEEDS_REVIEW = "needs_review"  # matched, but its workflow has finished (e.g. a chargeback)
    REJECTED = "rejected"  # forged, stale or malformed: not acted upon


class WebhookAck(BaseModel):
    outcome: WebhookOutcome
    event_id: str | None = None
