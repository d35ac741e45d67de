"""Checking webhooks: constant-time HMAC-SHA256, a bounded clock skew, a JSON object body."""

from __future__ import annotations

import hashlib
import hmac
import json
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


def json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise WebhookRejected("webhook body is not JSON") from exc
    if not isinstance(parsed, dict):
        raise WebhookRejected("webhook body is not a JSON object")
    return parsed
