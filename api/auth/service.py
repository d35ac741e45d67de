"""Logging in. Failures say only "wrong credentials": which part was wrong is nobody's business."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api import sessions, throttle
from api.auth.schemas import AccessToken, LoggedOut, LoginRequest, StaffLoginRequest
from api.context import RequestContext
from api.policy import Principal, ip_allowed
from api.security import password_matches, totp_step_of
from api.state import AppState
from db import audit
from db.models import IntroducingBroker, StaffUser
from db.queries.clients import client_by_email, client_by_id
from domain.errors import Forbidden, NotAuthenticated
from domain.roles import PrincipalKind

WRONG_CREDENTIALS = "email, password or one-time code is wrong"


class Attempt:
    """One log-in attempt under the throttle: refused at once while its account or address
    waits. The address is counted before the password is checked (many accounts guessed in
    parallel from one address meet its delay and its lock as if they came one by one) and given
    back when the password was right; an account's failure is counted (in its own transaction)
    before the 401 leaves."""

    def __init__(self, state: AppState, scope: str, email: str, context: RequestContext) -> None:
        self.state = state
        self.scope = scope
        self.context = context
        self.now = state.clock()
        self.keys = throttle.login_keys(state.settings.auth_throttle, email, context.ip)

    async def check(self, session: AsyncSession) -> None:
        # The address first, in a short transaction of its own before this request's takes a
        # connection: a refused burst never holds the pool. Every attempt it lets through is
        # counted (a right password gives it back).
        await throttle.claim(
            self.state.sessions,
            self.state.settings.auth_throttle,
            self.scope,
            self.keys[1],
            self.now,
            self.context,
        )
        # The account's own attempts one at a time (until this request's transaction ends), so
        # each sees the failures of the one before it.
        await throttle.one_at_a_time(session, self.scope, self.keys[0])
        await throttle.check(session, self.scope, self.keys[:1], self.now)

    async def failed(self) -> NotAuthenticated:
        # The address was counted by `check` already.
        await throttle.record_failure(
            self.state.sessions,
            self.state.settings.auth_throttle,
            self.scope,
            self.keys[:1],
            self.now,
            self.context,
        )
        return NotAuthenticated(WRONG_CREDENTIALS)

    async def succeeded(self) -> None:
        await throttle.clear(self.state.sessions, self.scope, self.keys[0])
        await throttle.release(self.state.sessions, self.scope, self.keys[1], self.now)

    async def session(
        self, session: AsyncSession, kind: PrincipalKind, subject: uuid.UUID
    ) -> AccessToken:
        return await sessions.open_session(
            session, kind, subject, self.state.settings, self.now, self.context.ip
        )


async def log_in_client(
    session: AsyncSession, request: LoginRequest, state: AppState, context: RequestContext
) -> AccessToken:
    attempt = Attempt(state, "login:client", request.email, context)
    await attempt.check(session)
    client = await client_by_email(session, request.email)
    if not await password_matches(client.password_hash if client else None, request.password):
        raise await attempt.failed()
    assert client is not None
    await attempt.succeeded()
    if client.status != "active":
        raise Forbidden("this client account is blocked; contact support")
    return await attempt.session(session, PrincipalKind.CLIENT, client.id)


async def log_in_ib(
    session: AsyncSession, request: LoginRequest, state: AppState, context: RequestContext
) -> AccessToken:
    attempt = Attempt(state, "login:ib", request.email, context)
    await attempt.check(session)
    ib = await session.scalar(
        select(IntroducingBroker).where(IntroducingBroker.email == request.email.lower())
    )
    if not await password_matches(ib.password_hash if ib else None, request.password):
        raise await attempt.failed()
    assert ib is not None
    await attempt.succeeded()
    return await attempt.session(session, PrincipalKind.IB, ib.id)


async def log_in_staff(
    session: AsyncSession,
    request: StaffLoginRequest,
    state: AppState,
    context: RequestContext,
) -> AccessToken:
    """Password and TOTP code: a wrong one of either counts as one failure of the account (the
    console's log-in is this same function, under the same counter)."""
    attempt = Attempt(state, "login:staff", request.email, context)
    await attempt.check(session)
    box = state.secret_box
    # Locked: two logins racing with one TOTP code must not both get through.
    staff = await session.scalar(
        select(StaffUser).where(StaffUser.email == request.email.lower()).with_for_update()
    )
    if not await password_matches(staff.password_hash if staff else None, request.password):
        raise await attempt.failed()
    assert staff is not None
    secret = box.open(staff.totp_secret_enc).get_secret_value()
    step = totp_step_of(secret, request.totp_code, staff.totp_last_step)
    if step is None:
        raise await attempt.failed()
    await attempt.succeeded()
    if not staff.active:
        raise Forbidden("this staff account is disabled")
    if not ip_allowed(context.ip, staff.ip_allowlist):
        raise Forbidden(f"logging in from {context.ip} is not allowed for this staff account")
    staff.totp_last_step = step
    audit.record(
        session,
        audit.Actor(
            kind="staff",
            id=str(staff.id),
            roles=tuple(staff.roles),
            ip=context.ip,
            request_id=context.request_id,
            trace_id=context.trace_id,
        ),
        audit.Change(action="staff.logged_in", entity_type="staff_user", entity_id=str(staff.id)),
    )
    return await attempt.session(session, PrincipalKind.STAFF, staff.id)


async def refresh(token: str, state: AppState) -> AccessToken:
    """Rotate the session's refresh token; the principal must still be allowed in (a blocked
    client or a disabled staff user gets no new token, and the session ends). Its own
    transaction: a refusal that ends the session must be stored although the answer is a 401."""
    now = state.clock()
    refusal: NotAuthenticated | None = None
    async with state.sessions.begin() as session:
        try:
            row, tokens = await sessions.refresh(session, token, state.settings, now)
        except sessions.RefreshReused as reused:
            await sessions.revoke(session, reused.session_id, "refresh_token_reused", now)
            refusal = reused
        else:
            kind = PrincipalKind(row.principal_kind)
            if not await _still_allowed(session, kind, row.subject_id):
                await sessions.revoke(session, row.id, "principal_disabled", now)
                refusal = NotAuthenticated(sessions.SESSION_ENDED)
    if refusal is not None:
        raise refusal
    return tokens


async def _still_allowed(session: AsyncSession, kind: PrincipalKind, subject: uuid.UUID) -> bool:
    if kind is PrincipalKind.STAFF:
        staff = await session.get(StaffUser, subject)
        return staff is not None and staff.active
    if kind is PrincipalKind.CLIENT:
        client = await client_by_id(session, subject)
        return client is not None and client.status == "active"
    return await session.get(IntroducingBroker, subject) is not None


async def log_out(
    session: AsyncSession, principal: Principal, everywhere: bool, now: datetime
) -> LoggedOut:
    """End this session, or every session of the principal; audited as `auth.logged_out`."""
    if everywhere:
        ended = await sessions.revoke_all(session, principal.kind, principal.id, "logout_all", now)
    elif principal.session_id is not None:
        ended = await sessions.revoke(session, principal.session_id, "logout", now)
    else:
        ended = 0
    audit.record(
        session,
        principal.actor(),
        audit.Change(
            action="auth.logged_out",
            entity_type=ENTITY_OF[principal.kind],
            entity_id=str(principal.id),
            after={
                "everywhere": everywhere,
                "sessions_ended": ended,
                "session_id": str(principal.session_id) if principal.session_id else None,
            },
        ),
    )
    return LoggedOut(sessions_ended=ended)


ENTITY_OF = {
    PrincipalKind.STAFF: "staff_user",
    PrincipalKind.CLIENT: "client",
    PrincipalKind.IB: "introducing_broker",
}
