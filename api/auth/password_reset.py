"""Forgotten passwords (clients, staff, introducing brokers): a request mails a one-time link,
the confirmation sets the new password, spends the token and ends every session of the account.

The request answers 202 with the same body whether or not the address has an account (and is
counted against the address and the email either way), so it tells nobody who has one. The
token is derived from the reset's id (domain/password_reset.py) and only its hash is stored; the
mail step writes the link, so the token never passes through workflow history. Both steps sit
under the throttle of api/throttle.py: 429 with Retry-After, growing delays, an audited lock.
Each kind of principal has its own scopes (`reset:staff`, `reset-confirm:ib`, ...).

A staff user's confirmation also needs a valid current TOTP code (and an address of their
allowlist): a reset token alone, from a mailbox someone else reads, does not take over a staff
account. A wrong code counts as a refused token and spends nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api import sessions, throttle
from api.auth.schemas import (
    PasswordResetConfirm,
    PasswordResetDone,
    PasswordResetRequest,
    PasswordResetRequested,
    StaffPasswordResetConfirm,
)
from api.context import RequestContext
from api.policy import ip_allowed
from api.security import hash_password, totp_step_of
from api.state import AppState
from api.temporal import start_once
from contracts.client_mail import (
    CLIENT_MAIL,
    ClientMailInput,
    MailRecipient,
    MailTemplate,
    client_mail_workflow_id,
)
from db import audit
from db.models import Client, IntroducingBroker, PasswordReset, StaffUser
from db.queries.clients import client_by_email, client_by_id
from domain.errors import Forbidden, InvalidInput
from domain.onboarding import check_password_strength
from domain.password_reset import (
    TOKEN_REFUSED,
    digest_matches,
    make_token,
    reset_id_of,
    token_digest,
)
from domain.roles import PrincipalKind

Account = Client | StaffUser | IntroducingBroker


@dataclass(frozen=True)
class Audience:
    """Whose passwords a reset route resets: its throttle scopes, audit names and mail."""

    kind: PrincipalKind
    entity_type: str
    recipient: MailRecipient

    @property
    def request_scope(self) -> str:
        return f"reset:{self.kind.value}"

    @property
    def confirm_scope(self) -> str:
        return f"reset-confirm:{self.kind.value}"

    @property
    def login_scope(self) -> str:
        return f"login:{self.kind.value}"


CLIENTS = Audience(PrincipalKind.CLIENT, "client", MailRecipient.CLIENT)
STAFF = Audience(PrincipalKind.STAFF, "staff_user", MailRecipient.STAFF)
IBS = Audience(PrincipalKind.IB, "introducing_broker", MailRecipient.IB)
CODE_REFUSED = (
    "the reset token is not valid, expired or already used (ask for a new one), or the one-time "
    "code is wrong"
)


def _actor(
    kind: str,
    subject_id: uuid.UUID | None,
    context: RequestContext,
    roles: tuple[str, ...] = (),
) -> audit.Actor:
    return audit.Actor(
        kind=kind,
        id=str(subject_id) if subject_id else None,
        roles=roles,
        ip=context.ip,
        request_id=context.request_id,
        trace_id=context.trace_id,
    )


async def _by_email(session: AsyncSession, audience: Audience, email: str) -> Account | None:
    """The account of this kind with this address, if it may reset its password."""
    if audience is CLIENTS:
        client = await client_by_email(session, email)
        return client if client is not None and client.status == "active" else None
    if audience is STAFF:
        staff = await session.scalar(select(StaffUser).where(StaffUser.email == email))
        return staff if staff is not None and staff.active else None
    ib: IntroducingBroker | None = await session.scalar(
        select(IntroducingBroker).where(IntroducingBroker.email == email)
    )
    return ib


async def _by_id(session: AsyncSession, audience: Audience, subject: uuid.UUID) -> Account | None:
    """The account a reset names, locked, if it may still reset its password."""
    if audience is CLIENTS:
        client = await client_by_id(session, subject, lock=True)
        return client if client is not None and client.status == "active" else None
    if audience is STAFF:
        staff = await session.get(StaffUser, subject, with_for_update=True)
        return staff if staff is not None and staff.active else None
    return await session.get(IntroducingBroker, subject, with_for_update=True)


async def request_reset(
    session: AsyncSession,
    body: PasswordResetRequest,
    state: AppState,
    context: RequestContext,
    audience: Audience = CLIENTS,
) -> PasswordResetRequested:
    """Every request counts against its email and its address (found or not: a throttle that
    only counted known emails would tell which are known). An active account gets a new reset
    (older open ones closed) and its mail; anyone else gets the same answer and nothing."""
    rules = state.settings.auth_throttle
    now = state.clock()
    email = body.email.lower()
    keys = (
        throttle.ThrottleKey(throttle.ACCOUNT, email[:254], rules.reset_account),
        throttle.ThrottleKey(throttle.ADDRESS, context.ip[:254], rules.reset_address),
    )
    await throttle.check(session, audience.request_scope, keys, now)
    await throttle.record_failure(state.sessions, rules, audience.request_scope, keys, now, context)
    account = await _by_email(session, audience, email)
    if account is not None:
        await _open_reset(session, audience, account, state, context, now)
    return PasswordResetRequested()


async def _open_reset(
    session: AsyncSession,
    audience: Audience,
    account: Account,
    state: AppState,
    context: RequestContext,
    now: datetime,
) -> None:
    minutes = state.settings.auth_throttle.reset_token_minutes
    await _close_open_resets(session, audience, account.id, now, "superseded")
    reset_id = uuid.uuid4()
    key = state.settings.jwt_secret.get_secret_value().encode()
    reset = PasswordReset(
        id=reset_id,
        principal_kind=audience.kind.value,
        subject_id=account.id,
        email=account.email,
        token_hash=token_digest(make_token(key, reset_id)),
        expires_at=now + timedelta(minutes=minutes),
        ip=context.ip[:64],
    )
    session.add(reset)
    audit.record(
        session,
        _actor("anonymous", None, context),
        audit.Change(
            action=f"{audience.kind.value}.password_reset_requested",
            entity_type=audience.entity_type,
            entity_id=str(account.id),
            after={
                "email": account.email,
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
            client_id=account.id,
            template=MailTemplate.PASSWORD_RESET,
            context={"reset_id": str(reset_id), "expires_in_minutes": str(minutes)},
            recipient=audience.recipient,
        ),
        client_mail_workflow_id(mail_key),
    )


async def _close_open_resets(
    session: AsyncSession, audience: Audience, subject_id: uuid.UUID, now: datetime, reason: str
) -> None:
    await session.execute(
        update(PasswordReset)
        .where(
            PasswordReset.principal_kind == audience.kind.value,
            PasswordReset.subject_id == subject_id,
            PasswordReset.used_at.is_(None),
        )
        .values(used_at=now, used_reason=reason)
    )


async def confirm_reset(
    session: AsyncSession,
    body: PasswordResetConfirm,
    state: AppState,
    context: RequestContext,
    audience: Audience = CLIENTS,
) -> PasswordResetDone:
    """Set the new password if the token is the reset's, unused, unexpired, and its account
    still has the address it was sent to (a staff user: and the TOTP code is good, from an
    allowed address); then the token is spent, the account's other resets closed, every session
    ended and the account's log-in throttle cleared (the mailbox proved it). A refused token or
    code counts against the address (and the account it names) in the throttle."""
    rules = state.settings.auth_throttle
    now = state.clock()
    scope = audience.confirm_scope
    address = throttle.ThrottleKey(throttle.ADDRESS, context.ip[:254], rules.reset_address)
    await throttle.check(session, scope, (address,), now)
    check_password_strength(body.new_password)  # refused as it is; spends nothing
    keys: tuple[throttle.ThrottleKey, ...] = (address,)
    try:
        reset_id = reset_id_of(body.token)
    except InvalidInput:
        raise await _refused(state, audience, keys, now, context) from None
    reset = await session.get(PasswordReset, reset_id, with_for_update=True)
    if reset is not None:
        account_key = throttle.ThrottleKey(throttle.ACCOUNT, reset.email[:254], rules.reset_account)
        keys = (account_key, address)
        await throttle.check(session, scope, keys, now)
    account = await _account_of(session, audience, reset, body.token, now)
    if reset is None or account is None:
        raise await _refused(state, audience, keys, now, context)
    if isinstance(account, StaffUser):
        await _second_factor(state, audience, account, body, keys, now, context)

    account.password_hash = await hash_password(body.new_password)
    reset.used_at, reset.used_reason = now, "used"
    await _close_open_resets(session, audience, account.id, now, "reset_elsewhere")
    ended = await sessions.revoke_all(session, audience.kind, account.id, "password_reset", now)
    audit.record(
        session,
        _actor(
            audience.kind.value,
            account.id,
            context,
            tuple(account.roles) if isinstance(account, StaffUser) else (),
        ),
        audit.Change(
            action=f"{audience.kind.value}.password_reset",
            entity_type=audience.entity_type,
            entity_id=str(account.id),
            before={"reset_id": str(reset.id), "reset_used": False},
            after={"reset_id": str(reset.id), "reset_used": True, "sessions_ended": ended},
        ),
    )
    await session.flush()
    login = throttle.login_keys(rules, account.email, context.ip)[0]
    await throttle.clear(state.sessions, audience.login_scope, login)
    return PasswordResetDone(sessions_ended=ended)


async def _second_factor(
    state: AppState,
    audience: Audience,
    staff: StaffUser,
    body: PasswordResetConfirm,
    keys: tuple[throttle.ThrottleKey, ...],
    now: datetime,
    context: RequestContext,
) -> None:
    """A staff reset needs the current TOTP code (not one used before) and an address of the
    staff user's allowlist, as their log-in does."""
    code = body.totp_code if isinstance(body, StaffPasswordResetConfirm) else ""
    secret = state.secret_box.open(staff.totp_secret_enc).get_secret_value()
    step = totp_step_of(secret, code, staff.totp_last_step) if code else None
    if step is None:
        raise await _refused(state, audience, keys, now, context, CODE_REFUSED, "totp_code")
    if not ip_allowed(context.ip, staff.ip_allowlist):
        raise Forbidden(f"resetting from {context.ip} is not allowed for this staff account")
    staff.totp_last_step = step


async def _account_of(
    session: AsyncSession,
    audience: Audience,
    reset: PasswordReset | None,
    token: str,
    now: datetime,
) -> Account | None:
    """The account a good token resets, or None for any token that must be refused."""
    if (
        reset is None
        or reset.principal_kind != audience.kind.value
        or not digest_matches(token, reset.token_hash)
        or reset.used_at is not None
        or reset.expires_at <= now
    ):
        return None
    account = await _by_id(session, audience, reset.subject_id)
    if account is None or account.email != reset.email:
        return None
    return account


async def _refused(
    state: AppState,
    audience: Audience,
    keys: tuple[throttle.ThrottleKey, ...],
    now: datetime,
    context: RequestContext,
    detail: str = TOKEN_REFUSED,
    field: str = "token",
) -> InvalidInput:
    await throttle.record_failure(
        state.sessions, state.settings.auth_throttle, audience.confirm_scope, keys, now, context
    )
    return InvalidInput(detail, field=field)
