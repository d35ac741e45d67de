"""Throttling of guessable attempts: log-ins and mail resends, per account and per source address.

Before a password (or a TOTP code) is checked, `check` refuses with 429 and `Retry-After` while
the account or the address waits or is locked. After a failure, `record_failure` counts it in a
transaction of its own (the request's own rolls back with its 401) and sets the wait: nothing
for the first `free` failures, then a delay doubling from `first_delay_seconds`, and on the
`lock_after`-th failure a lock (audited as `auth.locked`), each lock twice as long as the last.
A successful log-in clears its account's counter; an address's counter only ages out.

A log-in's address is counted *before* the password hash (`claim`, under the row's lock, and
given back by `release` when the password was right), so a burst of parallel guesses at many
accounts from one address cannot all pass `check` before the first is counted.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.context import RequestContext
from db import audit
from db.models import AuthThrottle
from domain.errors import BackOfficeError
from settings import AuthThrottleRules, ThrottleLimit

Clock = Callable[[], datetime]
ACCOUNT = "account"
ADDRESS = "address"


def utc_now() -> datetime:
    return datetime.now(UTC)


class TooManyAttempts(BackOfficeError):
    status_code = 429
    title = "Too many attempts"
    retry_after_seconds: int

    def __init__(self, detail: str, retry_after_seconds: int, **extra: Any) -> None:
        super().__init__(detail, retry_after=retry_after_seconds, **extra)
        self.retry_after_seconds = retry_after_seconds


def is_lock(row: AuthThrottle) -> bool:
    """A lock (audited, lifted by an administrator or by time) rather than a short delay."""
    return row.locked_at is not None and row.locked_at == row.last_failure_at


@dataclass(frozen=True)
class ThrottleKey:
    kind: str  # ACCOUNT or ADDRESS
    key: str
    limit: ThrottleLimit


def login_keys(rules: AuthThrottleRules, account: str, ip: str) -> tuple[ThrottleKey, ...]:
    return (
        ThrottleKey(ACCOUNT, account.lower()[:254], rules.login_account),
        ThrottleKey(ADDRESS, ip[:254], rules.login_address),
    )


async def check(
    session: AsyncSession, scope: str, keys: Sequence[ThrottleKey], now: datetime
) -> None:
    """Refuse (429, Retry-After) while any of the keys waits or is locked."""
    named = or_(*(and_(AuthThrottle.key_kind == k.kind, AuthThrottle.key == k.key) for k in keys))
    blocking = list(
        await session.scalars(
            select(AuthThrottle).where(
                AuthThrottle.scope == scope, AuthThrottle.blocked_until > now, named
            )
        )
    )
    if not blocking:
        return
    raise _refusal(max(blocking, key=lambda r: r.blocked_until or now), now)


def _refusal(row: AuthThrottle, now: datetime) -> TooManyAttempts:
    assert row.blocked_until is not None
    wait = max(1, math.ceil((row.blocked_until - now).total_seconds()))
    whose = "this account" if row.key_kind == ACCOUNT else "your address"
    if is_lock(row):
        detail = (
            f"too many failed attempts: {whose} is locked until "
            f"{row.blocked_until:%Y-%m-%d %H:%M:%S} UTC; try again then, or ask an administrator"
        )
    else:
        detail = f"too many failed attempts from {whose}; wait {wait} s before trying again"
    return TooManyAttempts(detail, wait)


async def one_at_a_time(session: AsyncSession, scope: str, key: ThrottleKey) -> None:
    """Refuse (429) an attempt while another on the same key is being checked. A failure is
    counted after the slow password hash, so without this a burst of parallel guesses would all
    pass `check` before the first was counted. A transaction-level advisory lock, tried and not
    waited for: a burst cannot queue up and hold the pool's connections."""
    held = await session.scalar(
        select(func.pg_try_advisory_xact_lock(func.hashtext(scope), func.hashtext(key.key)))
    )
    if not held:
        raise TooManyAttempts(
            "another attempt for this account is being checked; try again in a moment", 1
        )


async def claim(
    sessions: async_sessionmaker[AsyncSession],
    rules: AuthThrottleRules,
    scope: str,
    key: ThrottleKey,
    now: datetime,
    context: RequestContext,
) -> None:
    """Count this attempt against `key` before it is checked, in a transaction of its own and
    under the key's row lock: refused (429) if the key waits or is locked, else counted as a
    failure (which may start the next delay or the lock) and let through. Parallel attempts
    queue on the row for the moment it takes, so each sees the ones before it; a right password
    gives its count back (`release`)."""
    async with sessions.begin() as session:
        row = await _locked_row(session, scope, key)
        if row.blocked_until is not None and row.blocked_until > now:
            refusal = _refusal(row, now)
        else:
            _count(row, key.limit, rules, now, session, context)
            return
    raise refusal


async def release(
    sessions: async_sessionmaker[AsyncSession], scope: str, key: ThrottleKey, now: datetime
) -> None:
    """Give back the count `claim` took for an attempt that turned out right: one failure fewer,
    and a short delay it started is lifted (never a lock)."""
    async with sessions.begin() as session:
        row = await _locked_row(session, scope, key)
        if row.failures > 0:
            row.failures -= 1
        if (
            not is_lock(row)
            and row.failures <= key.limit.free
            and row.blocked_until is not None
            and row.blocked_until > now
        ):
            row.blocked_until = None


async def record_failure(
    sessions: async_sessionmaker[AsyncSession],
    rules: AuthThrottleRules,
    scope: str,
    keys: Sequence[ThrottleKey],
    now: datetime,
    context: RequestContext,
) -> None:
    """Count one failure (or one counted request) against each key, in a transaction of its own."""
    async with sessions.begin() as session:
        for key in keys:
            row = await _locked_row(session, scope, key)
            _count(row, key.limit, rules, now, session, context)


async def clear(sessions: async_sessionmaker[AsyncSession], scope: str, key: ThrottleKey) -> None:
    """A successful log-in forgets its account's failures (and lets the next lock start short)."""
    async with sessions.begin() as session:
        row = await session.scalar(
            select(AuthThrottle)
            .where(
                AuthThrottle.scope == scope,
                AuthThrottle.key_kind == key.kind,
                AuthThrottle.key == key.key,
            )
            .with_for_update()
        )
        if row is not None and (row.failures or row.locks or row.blocked_until):
            row.failures, row.locks = 0, 0
            row.blocked_until, row.locked_at, row.last_failure_at = None, None, None


async def _locked_row(session: AsyncSession, scope: str, key: ThrottleKey) -> AuthThrottle:
    await session.execute(
        insert(AuthThrottle)
        .values(id=uuid.uuid4(), scope=scope, key_kind=key.kind, key=key.key, failures=0, locks=0)
        .on_conflict_do_nothing(constraint="uq_auth_throttles_key")
    )
    row = await session.scalar(
        select(AuthThrottle)
        .where(
            AuthThrottle.scope == scope,
            AuthThrottle.key_kind == key.kind,
            AuthThrottle.key == key.key,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


def _count(
    row: AuthThrottle,
    limit: ThrottleLimit,
    rules: AuthThrottleRules,
    now: datetime,
    session: AsyncSession,
    context: RequestContext,
) -> None:
    window = timedelta(minutes=limit.window_minutes)
    if row.last_failure_at is not None and now - row.last_failure_at > window:
        row.failures = 0
    if row.locked_at is not None and now - row.locked_at > timedelta(hours=rules.max_lock_hours):
        row.locks = 0
    row.failures += 1
    row.last_failure_at = now
    if row.failures >= limit.lock_after:
        minutes = min(limit.lock_minutes * 2**row.locks, rules.max_lock_hours * 60)
        row.locks += 1
        row.failures = 0
        row.locked_at = now
        row.blocked_until = now + timedelta(minutes=minutes)
        audit.record(
            session,
            audit.Actor(
                kind="system",
                id="brokerflow",
                ip=context.ip,
                request_id=context.request_id,
                trace_id=context.trace_id,
            ),
            audit.Change(
                action="auth.locked",
                entity_type="auth_throttle",
                entity_id=str(row.id),
                after={
                    "scope": row.scope,
                    "key_kind": row.key_kind,
                    "key": row.key,
                    "locked_until": row.blocked_until.isoformat(),
                    "lock": row.locks,
                },
                reason=f"{limit.lock_after} failed attempts",
            ),
        )
    elif row.failures > limit.free:
        seconds = min(
            rules.first_delay_seconds * 2 ** (row.failures - limit.free - 1),
            rules.max_delay_seconds,
        )
        row.blocked_until = now + timedelta(seconds=seconds)
