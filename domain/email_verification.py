"""Signed email-verification links: an HMAC over the client, the address and an expiry, so the
link needs no table, cannot be forged, and stops working when the address changes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import datetime

from domain.errors import InvalidInput

_PURPOSE = b"brokerflow-email-verification:v1"


def _signature(key: bytes, client_id: uuid.UUID, email: str, expires: int) -> str:
    message = b"|".join((_PURPOSE, client_id.bytes, email.lower().encode(), str(expires).encode()))
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_token(key: bytes, client_id: uuid.UUID, email: str, expires_at: datetime) -> str:
    expires = int(expires_at.timestamp())
    return f"{client_id.hex}.{expires}.{_signature(key, client_id, email, expires)}"


def read_token(key: bytes, token: str, email_of: dict[uuid.UUID, str], now: datetime) -> uuid.UUID:
    """The client the token verifies. `email_of` maps the token's client to their current
    address (empty if there is no such client)."""
    try:
        client_hex, expires_text, signature = token.split(".")
        client_id = uuid.UUID(hex=client_hex)
        expires = int(expires_text)
    except ValueError as exc:
        raise InvalidInput("the verification link is malformed", field="token") from exc
    email = email_of.get(client_id)
    expected = _signature(key, client_id, email or "", expires)
    if email is None or not hmac.compare_digest(signature, expected):
        raise InvalidInput("the verification link is not valid", field="token")
    if now.timestamp() > expires:
        raise InvalidInput("the verification link has expired; ask for a new one", field="token")
    return client_id
