"""Password-reset tokens: `<reset id>.<secret>`, the secret an HMAC of the reset's id under the
server's link key.

Derived rather than random so that the mail step, retried after a send that may have gone out,
writes the same link again (a mail is sent at least once), and so that no token ever travels
through workflow history (the workflow carries the reset's id only). The database keeps only
the SHA-256 of the token: a copy of the table alone opens nothing. Each reset row works once and
until its expiry; the checks of those live with the row (api/auth/password_reset.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

from domain.errors import InvalidInput

_PURPOSE = b"brokerflow-password-reset:v1"
TOKEN_REFUSED = "the password-reset link is not valid, expired or already used; ask for a new one"


def make_token(key: bytes, reset_id: uuid.UUID) -> str:
    digest = hmac.new(key, _PURPOSE + b"|" + reset_id.bytes, hashlib.sha256).digest()
    secret = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return f"{reset_id.hex}.{secret}"


def token_digest(token: str) -> str:
    """What the database keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def reset_id_of(token: str) -> uuid.UUID:
    """The reset a token names, if it is well-formed (whether it is the right one is checked
    against the stored digest)."""
    reset_hex, dot, secret = token.partition(".")
    try:
        reset_id = uuid.UUID(hex=reset_hex)
    except ValueError:
        reset_id = None
    if reset_id is None or not dot or not secret:
        raise InvalidInput(TOKEN_REFUSED, field="token")
    return reset_id


def digest_matches(token: str, stored_digest: str) -> bool:
    return hmac.compare_digest(token_digest(token), stored_digest)
