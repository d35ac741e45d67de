"""Checking webhooks: constant-time HMAC-SHA256, a bounded clock skew, a JSON object body."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from domain.payments import WebhookRejected
from psp_adapter.gateway import SIGNATURE_TOLERANCE_SECONDS


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def check(secret: str, message: bytes, signature: str, sent_at: int, now: datetime) -> None:
    if not hmac.compare_digest(hmac_hex(secret, message), signature):
        raise WebhookRejected("webhook signature does not match")
    if abs(now.timestamp() - sent_at) > SIGNATURE_TOLERANCE_SECONDS:
        raise WebhookRejected("webhook timestamp is outside the tolerated window")


@contextmanager
def well_formed(provider: str) -> Iterator[None]:
    """A correctly signed body that lacks a field or carries a wrong value is still refused as
    a webhook, not left to fail as a KeyError further in."""
    try:
        yield
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise WebhookRejected(f"{provider} webhook body is malformed: {exc!r}") from exc


def json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise WebhookRejected("webhook body is not JSON") from exc
    if not isinstance(parsed, dict):
        raise WebhookRejected("webhook body is not a JSON object")
    return parsed
