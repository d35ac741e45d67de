"""Logging in. Failures say only "wrong credentials": which part was wrong is nobody's business."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.schemas import AccessToken, LoginRequest, StaffLoginRequest
from api.context import RequestContext
from api.policy import ip_allowed
from api.security import issue_token, password_matches, totp_step_of
from db import audit
from db.models import IntroducingBroker, StaffUser
from db.queries.clients import client_by_email
from db.sealed import SecretBox
from domain.errors import Forbidden, NotAuthenticated
from domain.roles import PrincipalKind
from settings import Settings

WRONG_CREDENTIALS = "email, password or one-time code is wrong"


def _token(kind: PrincipalKind, subject: uuid.UUID, settings: Settings) -> AccessToken:
    ttl = timedelta(minutes=settings.access_token_minutes)
    token = issue_token(kind, subject, settings.jwt_secret.get_secret_value(), ttl)
    return AccessToken(access_token=token, expires_in=int(ttl.total_seconds()))


async def log_in_client(
    session: AsyncSession, request: LoginRequest, settings: Settings
) -> AccessToken:
    client = await client_by_email(session, request.email)
    if not await password_matches(client.password_hash if client else None, request.password):
        raise NotAuthenticated(WRONG_CREDENTIALS)
    assert client is not None
    if client.status != "active":
        raise Forbidden("this client account is blocked; contact support")
    return _token(PrincipalKind.CLIENT, client.id, settings)


async def log_in_ib(
    session: AsyncSession, request: LoginRequest, settings: Settings
) -> AccessToken:
    ib = await session.scalar(
        select(IntroducingBroker).where(IntroducingBroker.email == request.email.lower())
    )
    if not await password_matches(ib.password_hash if ib else None, request.password):
        raise NotAuthenticated(WRONG_CREDENTIALS)
    assert ib is not None
    return _token(PrincipalKind.IB, ib.id, settings)


async def log_in_staff(
    session: AsyncSession,
    request: StaffLoginRequest,
    settings: Settings,
    box: SecretBox,
    context: RequestContext,
) -> AccessToken:
    # Locked: two logins racing with one TOTP code must not both get through.
    staff = await session.scalar(
        select(StaffUser).where(StaffUser.email == request.email.lower()).with_for_update()
    )
    if not await password_matches(staff.password_hash if staff else None, request.password):
        raise NotAuthenticated(WRONG_CREDENTIALS)
    assert staff is not None
    secret = box.open(staff.totp_secret_enc).get_secret_value()
    step = totp_step_of(secret, request.totp_code, staff.totp_last_step)
    if step is None:
        raise NotAuthenticated(WRONG_CREDENTIALS)
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
    return _token(PrincipalKind.STAFF, staff.id, settings)
