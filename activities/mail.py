"""Mail to clients: one notification row per key, the template rendered, the message handed to
the SMTP server under a Message-ID derived from the key (a retried send carries the same id).
Staff users and introducing brokers get their password-reset link by the same step
(`ClientMailInput.recipient`), without a notification row (those are the client's inbox), the
link pointing at the console's page.

The email-verification and password-reset links are signed here, in the activity, so their
tokens never sit in a workflow's history (a reset mail's workflow carries the reset's id only).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any

from pydantic import SecretStr
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts import client_mail
from contracts.client_mail import ClientMailInput, MailRecipient, MailTemplate
from contracts.steps import implements
from db.models import Client, IntroducingBroker, Notification, PasswordReset, StaffUser
from db.queries.clients import client_by_id
from domain.email_verification import make_token
from domain.password_reset import make_token as make_reset_token
from mailer.smtp import Mailer, MailRejected, OutgoingMail
from mailer.templates import render

# The API commits a new client right after starting the verification mail's workflow.
MAX_ATTEMPTS_FOR_MISSING_CLIENT = 20

# Our template names (the workflow contracts) → the mailer's template files.
TEMPLATE_FILES: dict[MailTemplate, str] = {
    MailTemplate.VERIFY_EMAIL: "email_verification",
    MailTemplate.KYC_INFO_REQUESTED: "kyc_info_requested",
    MailTemplate.KYC_REMINDER: "reminder",
    MailTemplate.KYC_APPROVED: "kyc_approved",
    MailTemplate.KYC_REJECTED: "kyc_rejected",
    MailTemplate.ACCOUNT_READY: "live_account_ready",
    MailTemplate.LEVERAGE_DECIDED: "leverage_change_decided",
    MailTemplate.PASSWORD_RESET: "password_reset",
    MailTemplate.SIGNUP_WITH_YOUR_EMAIL: "signup_with_your_email",
}
# Where a staff user's or an IB's reset link leads: the console's "set new password" page.
CONSOLE_RESET_PAGES: dict[MailRecipient, str] = {
    MailRecipient.STAFF: "/console/reset-password",
    MailRecipient.IB: "/console/ib/reset-password",
}
# Context entries that templates read as lists (one item per line) or as yes/no.
LIST_FIELDS = frozenset({"missing", "waiting_for"})
FLAG_FIELDS = frozenset({"approved"})


def message_id(key: str, sender: str) -> str:
    """`<hash-of-key@sender-domain>`: the same for every attempt at sending one mail."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "brokerflow.local"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


def template_context(request: ClientMailInput) -> dict[str, Any]:
    """The workflow's string context in the shapes the templates read."""
    context: dict[str, Any] = {}
    for name, value in request.context.items():
        if name in LIST_FIELDS:
            context[name] = [line.strip() for line in value.splitlines() if line.strip()]
        elif name in FLAG_FIELDS:
            context[name] = value.strip().lower() in ("1", "true", "yes")
        else:
            context[name] = value
    return context


class ClientMail:
    """The mail step, on the main task queue."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        mailer: Mailer,
        *,
        sender: str,
        public_base_url: str,
        link_key: SecretStr,
        email_link_hours: int = 48,
    ) -> None:
        self._sessions = sessions
        self._mailer = mailer
        self._sender = sender
        self._base_url = public_base_url.rstrip("/")
        self._link_key = link_key
        self._link_hours = email_link_hours

    @implements(client_mail.send_client_mail)
    async def send_client_mail(self, request: ClientMailInput) -> None:
        if request.recipient is not MailRecipient.CLIENT:
            await self._send_console_mail(request)
            return
        async with self._sessions.begin() as session:
            client = await client_by_id(session, request.client_id)
            if client is None:
                raise ApplicationError(
                    f"client {request.client_id} does not exist",
                    type="ClientNotFound",
                    non_retryable=activity.info().attempt >= MAX_ATTEMPTS_FOR_MISSING_CLIENT,
                )
            reset = await self._reset_of(session, request, client.id)
            subject, text, html = self._render(request, client, reset)
            await session.execute(
                pg_insert(Notification)
                .values(
                    client_id=client.id,
                    key=request.key,
                    kind=request.template.value,
                    message=subject,
                )
                .on_conflict_do_nothing(index_elements=["key"])
            )
            to = client.email
        await self._send(request, to, subject, text, html)

    async def _send(
        self, request: ClientMailInput, to: str, subject: str, text: str, html: str
    ) -> None:
        mail = OutgoingMail(
            to=to,
            subject=subject,
            text=text,
            html=html,
            message_id=message_id(request.key, self._sender),
        )
        try:
            await self._mailer.send(mail)
        except MailRejected as rejected:
            raise ApplicationError(str(rejected), type="MailRejected", non_retryable=True) from None
        # MailUnavailable goes out as it is: the workflow's retry policy waits for the server.

    async def _send_console_mail(self, request: ClientMailInput) -> None:
        """A staff user's or an IB's password-reset link (the only mail they get so far)."""
        if request.template is not MailTemplate.PASSWORD_RESET:
            raise ApplicationError(
                f"no {request.recipient.value} mail template for {request.template.value}",
                type="MailTemplateMissing",
                non_retryable=True,
            )
        async with self._sessions.begin() as session:
            person: StaffUser | IntroducingBroker | None
            if request.recipient is MailRecipient.STAFF:
                person = await session.get(StaffUser, request.client_id)
            else:
                person = await session.get(IntroducingBroker, request.client_id)
            if person is None:
                raise ApplicationError(
                    f"{request.recipient.value} {request.client_id} does not exist",
                    type="RecipientNotFound",
                    non_retryable=activity.info().attempt >= MAX_ATTEMPTS_FOR_MISSING_CLIENT,
                )
            reset = await self._reset_of(session, request, person.id)
            assert reset is not None
            name = person.full_name if isinstance(person, StaffUser) else person.name
            to = person.email
        context = template_context(request)
        context.pop("reset_id", None)
        context.update(
            name=name,
            portal_url=self._base_url + CONSOLE_RESET_PAGES[request.recipient].rsplit("/", 1)[0],
            reset_url=self.reset_link(reset.id, CONSOLE_RESET_PAGES[request.recipient]),
            needs_code=request.recipient is MailRecipient.STAFF,
        )
        subject, text, html = self._render_template(request, "password_reset", context)
        await self._send(request, to, subject, text, html)

    async def _reset_of(
        self, session: AsyncSession, request: ClientMailInput, subject_id: uuid.UUID
    ) -> PasswordReset | None:
        """The reset a password-reset mail names (the API commits it right after starting the
        mail, so a first attempt may not see it yet)."""
        if request.template is not MailTemplate.PASSWORD_RESET:
            return None
        try:
            reset_id = uuid.UUID(request.context.get("reset_id", ""))
        except ValueError:
            raise ApplicationError(
                f"mail {request.key} names no password reset",
                type="MailContext",
                non_retryable=True,
            ) from None
        reset = await session.get(PasswordReset, reset_id)
        kind = request.recipient.value
        if reset is None or reset.subject_id != subject_id or reset.principal_kind != kind:
            raise ApplicationError(
                f"password reset {reset_id} of {kind} {subject_id} does not exist",
                type="PasswordResetNotFound",
                non_retryable=activity.info().attempt >= MAX_ATTEMPTS_FOR_MISSING_CLIENT,
            )
        return reset

    def _render(
        self, request: ClientMailInput, client: Client, reset: PasswordReset | None = None
    ) -> tuple[str, str, str]:
        template = TEMPLATE_FILES.get(request.template)
        if template is None:
            raise ApplicationError(
                f"no client mail template for {request.template.value}",
                type="MailTemplateMissing",
                non_retryable=True,
            )
        context = template_context(request)
        context.setdefault("name", client.full_name)
        context.setdefault("portal_url", self._base_url)
        if request.template is MailTemplate.VERIFY_EMAIL:
            context["verify_url"] = self.verification_link(client.id, client.email)
            context["expires_in_hours"] = self._link_hours
        if reset is not None:
            context.pop("reset_id", None)
            context["reset_url"] = self.reset_link(reset.id)
        return self._render_template(request, template, context)

    def _render_template(
        self, request: ClientMailInput, template: str, context: dict[str, Any]
    ) -> tuple[str, str, str]:
        try:
            return render(template, **context)
        except Exception as error:  # a template that cannot render will not render next time
            raise ApplicationError(
                f"mail {request.key} ({template}) does not render: {error}",
                type="MailTemplateError",
                non_retryable=True,
            ) from None

    def reset_link(self, reset_id: uuid.UUID, page: str = "/reset-password") -> str:
        """The token goes in the fragment: a browser never sends it to a server, so it reaches
        no access log; the page posts it to the confirmation (a client's portal page to
        POST /v1/auth/password-reset/confirm, the console's to its own form)."""
        token = make_reset_token(self._link_key.get_secret_value().encode(), reset_id)
        return f"{self._base_url}{page}#token={token}"

    def verification_link(self, client_id: uuid.UUID, email: str) -> str:
        expires = datetime.now(UTC) + timedelta(hours=self._link_hours)
        token = make_token(self._link_key.get_secret_value().encode(), client_id, email, expires)
        return f"{self._base_url}/v1/verify-email?token={token}"
