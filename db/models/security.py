from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from db.base import RecordModel


class AuthThrottle(RecordModel):
    """Failed attempts of one kind (`scope`: a log-in, a mail resend) against one account or from
    one source address; `blocked_until` is a growing delay, or a lock when `locked_at` is set."""

    __tablename__ = "auth_throttles"
    __table_args__ = (UniqueConstraint("scope", "key_kind", "key", name="uq_auth_throttles_key"),)

    scope: Mapped[str] = mapped_column(String(32))
    # "account" (an email or a client id) or "address" (the caller's IP).
    key_kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(254))
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime | None]
    blocked_until: Mapped[datetime | None] = mapped_column(index=True)
    locked_at: Mapped[datetime | None]
    # Locks so far: each lock lasts twice as long as the one before.
    locks: Mapped[int] = mapped_column(default=0)


class AuthSession(RecordModel):
    """One log-in: its access tokens name it (`sid`) and are refused once it is revoked; its
    refresh token rotates on every use (only a hash is kept, and the one before it, so a reused
    old refresh token is recognised and ends the session)."""

    __tablename__ = "auth_sessions"
    __table_args__ = (Index("ix_auth_sessions_subject", "principal_kind", "subject_id"),)

    principal_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[uuid.UUID]
    refresh_hash: Mapped[str] = mapped_column(String(64))
    previous_refresh_hash: Mapped[str | None] = mapped_column(String(64))
    refresh_expires_at: Mapped[datetime]
    generation: Mapped[int] = mapped_column(default=1)
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))


class PasswordReset(RecordModel):
    """One "forgot my password" request that found an account: the mailed token (only its
    SHA-256 kept) works once, until `expires_at`, for the address it was sent to. A newer
    request or a completed reset ends the others of the same principal (`used_at` set)."""

    __tablename__ = "password_resets"
    __table_args__ = (Index("ix_password_resets_subject", "principal_kind", "subject_id"),)

    principal_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[uuid.UUID]
    email: Mapped[str] = mapped_column(String(254))
    token_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # "used", "superseded" (a newer request) or "reset_elsewhere" (another token was used).
    used_reason: Mapped[str | None] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(64))
