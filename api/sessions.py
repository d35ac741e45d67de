"""Server-side sessions: every log-in opens one, every access token names it, and every request
checks it is still open. Refresh tokens rotate on each use; the old one, shown again, is taken
for a stolen copy and ends the session. See docs/security.md."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.schemas import AccessToken
from api.security import TokenClaims, issue_token
from db.base import RecordModel
from db.models import AuthSession
from domain.errors import NotAuthenticated
from domain.roles import PrincipalKind
from settings import Settings

SESSION_ENDED = "this session has ended (logged out or revoked); log in again"
P = TypeVar("P", bound=RecordModel)

REFRESH_REFUSED = "the refresh token is not valid, expired or already used; log in again"


class RefreshReused(NotAuthenticated):
    """An old refresh token came back: the caller ends the session in a transaction of its own
    (the request's rolls back with this 401)."""

    def __init__(self, session_id: uuid.UUID) -> None:
        super().__init__(REFRESH_REFUSED, session_revoked=True)
        self.session_id = session_id


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_refresh(session_id: uuid.UUID) -> tuple[str, str]:
    secret = secrets.token_urlsafe(32)
    return f"{session_id.hex}.{secret}", _digest(secret)


def _tokens(row: AuthSession, refresh: str, settings: Settings, now: datetime) -> AccessToken:
    ttl = timedelta(minutes=settings.access_token_minutes)
    access = issue_token(
        PrincipalKind(row.principal_kind),
        row.subject_id,
        settings.jwt_secret.get_secret_value(),
        ttl,
        session_id=row.id,
    )  # on the real clock: the signature library checks `iat` and `exp` against it
    return AccessToken(
        access_token=access,
        expires_in=int(ttl.total_seconds()),
        refresh_token=refresh,
        refresh_expires_in=max(0, int((row.refresh_expires_at - now).total_seconds())),
    )


async def open_session(
    session: AsyncSession,
    kind: PrincipalKind,
    subject: uuid.UUID,
    settings: Settings,
    now: datetime,
    ip: str | None,
) -> AccessToken:
    session_id = uuid.uuid4()
    refresh, digest = _new_refresh(session_id)
    row = AuthSession(
        id=session_id,
        principal_kind=kind.value,
        subject_id=subject,
        refresh_hash=digest,
        refresh_expires_at=now + timedelta(days=settings.refresh_token_days),
        generation=1,
        ip=ip[:64] if ip else None,
    )
    session.add(row)
    await session.flush()
    return _tokens(row, refresh, settings, now)


def _check_open(row: AuthSession | None, claims: TokenClaims) -> None:
    """The token's session exists, is the token's principal's, and is not revoked."""
    if (
        row is None
        or row.revoked_at is not None
        or row.subject_id != claims.subject
        or row.principal_kind != claims.kind.value
    ):
        raise NotAuthenticated(SESSION_ENDED)


def _session_id(claims: TokenClaims) -> uuid.UUID:
    if claims.session_id is None:
        raise NotAuthenticated("access token names no session; log in again")
    return claims.session_id


async def principal_of_open_session(
    session: AsyncSession, claims: TokenClaims, principal: type[P]
) -> P | None:
    """Checks the token's session is open and returns the principal's row (`principal`: the
    model of `claims.kind`), or None if it is gone, in one query: every authenticated request
    runs it, and the session is read in it (revocation takes effect at once)."""
    found = (
        await session.execute(
            select(AuthSession, principal)
            .outerjoin(principal, principal.id == AuthSession.subject_id)
            .where(AuthSession.id == _session_id(claims))
        )
    ).one_or_none()
    if found is None:
        raise NotAuthenticated(SESSION_ENDED)
    _check_open(found[0], claims)
    row: P | None = found[1]
    return row


async def refresh(
    session: AsyncSession, token: str, settings: Settings, now: datetime
) -> tuple[AuthSession, AccessToken]:
    """A new access token and a new refresh token for the session; the presented refresh token
    stops working. Presenting the one before it again revokes the session (its holder and the
    thief cannot both be the owner). The caller checks the principal is still allowed in."""
    session_hex, _, secret = token.partition(".")
    try:
        session_id = uuid.UUID(hex=session_hex)
    except ValueError as exc:
        raise NotAuthenticated(REFRESH_REFUSED) from exc
    row = await session.get(AuthSession, session_id, with_for_update=True)
    if row is None or row.revoked_at is not None or not secret:
        raise NotAuthenticated(REFRESH_REFUSED)
    digest = _digest(secret)
    if row.previous_refresh_hash and hmac.compare_digest(digest, row.previous_refresh_hash):
        raise RefreshReused(row.id)
    if not hmac.compare_digest(digest, row.refresh_hash) or row.refresh_expires_at <= now:
        raise NotAuthenticated(REFRESH_REFUSED)
    new_refresh, new_digest = _new_refresh(row.id)
    row.previous_refresh_hash, row.refresh_hash = row.refresh_hash, new_digest
    row.generation += 1
    row.refresh_expires_at = now + timedelta(days=settings.refresh_token_days)
    await session.flush()
    return row, _tokens(row, new_refresh, settings, now)


async def revoke(session: AsyncSession, session_id: uuid.UUID, reason: str, now: datetime) -> int:
    result = await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def revoke_all(
    session: AsyncSession, kind: PrincipalKind, subject: uuid.UUID, reason: str, now: datetime
) -> int:
    """End every open session of a principal: log out everywhere, roles or password changed,
    deactivated or blocked. Their access tokens are refused from the next request on."""
    result = await session.execute(
        update(AuthSession)
        .where(
            AuthSession.principal_kind == kind.value,
            AuthSession.subject_id == subject,
            AuthSession.revoked_at.is_(None),
        )
        .values(revoked_at=now, revoked_reason=reason)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def open_sessions(session: AsyncSession, kind: PrincipalKind, subject: uuid.UUID) -> int:
    rows = await session.scalars(
        select(AuthSession.id).where(
            AuthSession.principal_kind == kind.value,
            AuthSession.subject_id == subject,
            AuthSession.revoked_at.is_(None),
        )
    )
    return len(list(rows))
