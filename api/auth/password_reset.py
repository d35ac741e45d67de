"""Forgotten passwords (clients): a request mails a one-time link, the confirmation sets the new
password, spends the token and ends every session of the account.

The request answers 202 with the same body whether or not the address has an account (and is
counted against the address and the email either way), so it tells nobody who is a client. The
token is derived from the reset's id (domain/password_reset.py) and only its hash is stored; the
mail step writes the link, so the token never passes through workflow history. Both steps sit
under the throttle of api/throttle.py: 429 with Retry-After, growing delays, an audited lock.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from api import sessions, throttle
from api.auth.schemas import (
    PasswordResetConfirm,
    PasswordResetDone,
    PasswordResetRequest,
    PasswordResetRequested,
)
from api.context import RequestContext
from api.security import hash_password
from api.state import AppState
from api.temporal import start_once
from contracts.client_mail import (
    CLIENT_MAIL,
    ClientMailInput,
    MailTemplate,
    client_mail_workflow_id,
)
from db import audit
from db.models import Client, PasswordReset
from db.queries.clients import client_by_email, client_by_id
from domain.errors import InvalidInput
from domain.onboarding import check_password_strength
from domain.password_reset import (
    TOKEN_REFUSED,
    digest_matches,
    make_token,
    reset_id_of,
    token_digest,
)
from domain.roles import PrincipalKind

REQUEST_SCOPE = "reset:client"
CONFIRM_SCOPE = "reset-confirm:client"
LOGIN_SCOPE = "login:client"


def _actor(kind: str, client_id: uuid.UUID | None, context: RequestContext) -> audit.Actor:
    return audit.Actor(
        kind=kind,
        id=str(client_id) if client_id else None,
        ip=context.ip,
        request_id=context.request_id,
        trace_id=context.trace_id,
    )


async def request_reset(
    session: AsyncSession, body: PasswordResetRequest, state: AppState, context: RequestContext
) -> PasswordResetRequested:
    """Every request counts against its email and its address (found or not: a throttle that
    only counted known emails would tell which are known). An active client gets a new reset
    (older open ones closed) and its mail; anyone else gets the same answer and nothing."""
    rules = state.settings.auth_throttle
    now = state.clock()
    email = body.email.lower()
    keys = (
        throttle.ThrottleKey(throttle.ACCOUNT, email[:254], rules.reset_account),
        throttle.ThrottleKey(throttle.ADDRESS, context.ip[:254], rules.reset_address),
    )
    await throttle.check(session, REQUEST_SCOPE, keys, now)
    await throttle.record_failure(state.sessions, rules, REQUEST_SCOPE, keys, now, context)
    client = await client_by_email(session, email)
    if client is not None and client.status == "active":
        await _open_reset(session, client, state, context, now)
    return PasswordResetRequested()


async def _open_reset(
    session: AsyncSession, client: Client, state: AppState, context: RequestContext, now: datetime
) -> None:
    minutes = state.settings.auth_throttle.reset_token_minutes
    await _close_open_resets(session, client.id, now, "superseded")
    reset_id = uuid.uuid4()
    key = state.settings.jwt_secret.get_secret_value().encode()
    reset = PasswordReset(
        id=reset_id,
        principal_kind=PrincipalKind.CLIENT.value,
        subject_id=client.id,
        email=client.email,
        token_hash=token_digest(make_token(key, reset_id)),
        expires_at=now + timedelta(minutes=minutes),
        ip=context.ip[:64],
    )
    session.add(reset)
    audit.record(
        session,
        _actor("anonymous", None, context),
        audit.Change(
            action="client.password_reset_requested",
            entity_type="client",
            entity_id=str(client.id),
            after={
                "email": client.email,
                "reset_id": str(reset_id),
                "expires_at": reset.expires_at.isoformat(),
            },
        ),
    )
    await session.flush()
    # Started before the commit (a refused start rolls the reset back, 503); the mail step
    # waits for the row if it runs before the commit lands.
    mail_key = f"password-reset-{reset_id}"
    await start_once(
        state.temporal,
        CLIENT_MAIL,
        ClientMailInput(
            key=mail_key,
            client_id=client.id,
            template=MailTemplate.PASSWORD_RESET,
            context={"reset_id": str(reset_id), "expires_in_minutes": str(minutes)},
        ),
        client_mail_workflow_id(mail_key),
    )


async def _close_open_resets(
    session: AsyncSession, client_id: uuid.UUID, now: datetime, reason: str
) -> None:
    await session.execute(
        update(PasswordReset)
        .where(
            PasswordReset.principal_kind == PrincipalKind.CLIENT.value,
            PasswordReset.subject_id == client_id,
            PasswordReset.used_at.is_(None),
        )
        .values(used_at=now, used_reason=reason)
    )


async def confirm_reset(
    session: AsyncSession, body: PasswordResetConfirm, state: AppState, context: RequestContext
) -> PasswordResetDone:
    """Set the new password if the token is the reset's, unused, unexpired, and its client still
    has the address it was sent to; then the token is spent, the client's other resets closed,
    every session ended and the account's log-in throttle cleared (the mailbox proved it). A
    refused token counts against the address (and the account it names) in the throttle."""
    rules = state.settings.auth_throttle
    now = state.clock()
    address = throttle.ThrottleKey(throttle.ADDRESS, context.ip[:254], rules.reset_address)
    await throttle.check(session, CONFIRM_SCOPE, (address,), now)
    check_password_strength(body.new_password)  # refused as it is; spends nothing
    keys: tuple[throttle.ThrottleKey, ...] = (address,)
    try:
        reset_id = reset_id_of(body.token)
    except InvalidInput:
        raise await _refused(state, keys, now, context) from None
    reset = await session.get(PasswordReset, reset_id, with_for_update=True)
    if reset is not None:
        account = throttle.ThrottleKey(throttle.ACCOUNT, reset.email[:254], rules.reset_account)
        keys = (account, address)
        await throttle.check(session, CONFIRM_SCOPE, keys, now)
    client = await _client_of(session, reset, body.token, now)
    if reset is None or client is None:
        raise await _refused(state, keys, now, context)

    client.password_hash = await hash_password(body.new_password)
    reset.used_at, reset.used_reason = now, "used"
    await _close_open_resets(session, client.id, now, "reset_elsewhere")
    ended = await sessions.revoke_all(
        session, PrincipalKind.CLIENT, client.id, "password_reset", now
    )
    audit.record(
        session,
        _actor("client", client.id, context),
        audit.Change(
            action="client.password_reset",
            entity_type="client",
            entity_id=str(client.id),
            before={"reset_id": str(reset.id), "reset_used": False},
            after={"reset_id": str(reset.id), "reset_used": True, "sessions_ended": ended},
        ),
    )
    await session.flush()
    login = throttle.login_keys(rules, client.email, context.ip)[0]
    await throttle.clear(state.sessions, LOGIN_SCOPE, login)
    return PasswordResetDone(sessions_ended=ended)


async def _client_of(
    session: AsyncSession, reset: PasswordReset | None, token: str, now: datetime
) -> Client | None:
    """The client a good token resets, or None for any token that must be refused."""
    if (
        reset is None
        or reset.principal_kind != PrincipalKind.CLIENT.value
        or not digest_matches(token, reset.token_hash)
        or reset.used_at is not None
        or reset.expires_at <= now
    ):
        return None
    client = await client_by_id(session, reset.subject_id, lock=True)
    if client is None or client.email != reset.email or client.status != "active":
        return None
    return client


async def _refused(
    state: AppState,
    keys: tuple[throttle.ThrottleKey, ...],
    now: datetime,
    context: RequestContext,
) -> InvalidInput:
    await throttle.record_failure(
        state.sessions, state.settings.auth_throttle, CONFIRM_SCOPE, keys, now, context
    )
    return InvalidInput(TOKEN_REFUSED, field="token")
