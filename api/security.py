"""Credentials: Argon2 password hashes, short-lived signed access tokens, TOTP second factor."""

from __future__ import annotations

import asyncio
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from domain.errors import NotAuthenticated
from domain.roles import PrincipalKind

_hasher = PasswordHasher()
# Verifying against this keeps the time of "no such user" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("brokerflow-timing-equaliser")
TOKEN_ALGORITHM = "HS256"
TOKEN_AUDIENCE = "brokerflow-api"


async def hash_password(password: str) -> str:
    # Argon2 is deliberately slow (tens of ms of CPU): keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def password_matches(stored_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(_verify, stored_hash, password)


def _verify(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_step_of(secret: str, code: str, after_step: int | None) -> int | None:
    """The 30-second step `code` belongs to, or None. One step of drift either way covers clocks
    that are a little off; a step at or before `after_step` was already used (no replays)."""
    totp = pyotp.TOTP(secret)
    now = datetime.now(UTC)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def totp_provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name="BrokerFlow")


@dataclass(frozen=True)
class TokenClaims:
    kind: PrincipalKind
    subject: uuid.UUID
    token_id: str
    # The server-side session the token belongs to (None: a token of no session, refused).
    session_id: uuid.UUID | None = None


def issue_token(
    kind: PrincipalKind,
    subject: uuid.UUID,
    secret: str,
    ttl: timedelta,
    session_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> str:
    now = now or datetime.now(UTC)
    claims = {
        "sub": str(subject),
        "kind": kind.value,
        "aud": TOKEN_AUDIENCE,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    return jwt.encode(claims, secret, algorithm=TOKEN_ALGORITHM)


def read_token(token: str, secret: str, max_ttl: timedelta | None = None) -> TokenClaims:
    """The token's claims; refused when forged, expired, or (with `max_ttl`) issued for longer
    than access tokens live: a token minted with a leaked key for a year is not one of ours."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[TOKEN_ALGORITHM],
            audience=TOKEN_AUDIENCE,
            options={"require": ["exp", "iat", "sub"]},
        )
        if max_ttl is not None and claims["exp"] - claims["iat"] > max_ttl.total_seconds() + 5:
            raise NotAuthenticated("access token lives longer than this server issues them")
        sid = claims.get("sid")
        return TokenClaims(
            kind=PrincipalKind(claims["kind"]),
            subject=uuid.UUID(claims["sub"]),
            token_id=str(claims["jti"]),
            session_id=uuid.UUID(sid) if sid else None,
        )
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated("access token has expired; log in again") from exc
    except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
        raise NotAuthenticated("access token is not valid") from exc
