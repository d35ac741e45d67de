"""One email to a client (or to compliance), sent at least once under a stable Message-ID
derived from its key: the `ClientMail` workflow, which the API starts for mail that belongs to
no other process (the sign-up's verification link, a password-reset link, the notice that
someone signed up with the owner's address), and the step every other process runs
itself (`workflows.client_mail.send_mail`), keyed by its own workflow id and the occasion.

Staff and introducing brokers get mail the same way (`recipient`): for now only their
password-reset link, which points at the console's page instead of the client portal's.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import Field

from contracts import policies
from contracts.process import Process
from contracts.steps import Step
from domain.frozen import Frozen as Contract


class MailTemplate(StrEnum):
    VERIFY_EMAIL = "verify_email"
    KYC_INFO_REQUESTED = "kyc_info_requested"
    KYC_REMINDER = "kyc_reminder"
    KYC_APPROVED = "kyc_approved"
    KYC_REJECTED = "kyc_rejected"
    ACCOUNT_READY = "account_ready"
    LEVERAGE_DECIDED = "leverage_decided"
    CASE_ESCALATED = "case_escalated"
    # The context names the reset (`reset_id`); the activity writes the link, so the token never
    # sits in a workflow's history.
    PASSWORD_RESET = "password_reset"
    SIGNUP_WITH_YOUR_EMAIL = "signup_with_your_email"


class MailRecipient(StrEnum):
    """Who `ClientMailInput.client_id` names: a client (the default, and every mail before this
    field existed), a staff user or an introducing broker."""

    CLIENT = "client"
    STAFF = "staff"
    IB = "ib"


def client_mail_workflow_id(key: str) -> str:
    return f"mail-{key}"


class ClientMailInput(Contract):
    """One email, sent at least once under a stable Message-ID derived from `key` (a retried
    send carries the same id, so mail clients show it once)."""

    key: str = Field(min_length=1, max_length=150)
    # The recipient's id: a client's, or (with `recipient`) a staff user's or an IB's.
    client_id: uuid.UUID
    template: MailTemplate
    context: dict[str, str] = Field(default_factory=dict)
    recipient: MailRecipient = MailRecipient.CLIENT


CLIENT_MAIL = Process("ClientMail", ClientMailInput, type(None))

send_client_mail = Step("send_client_mail", ClientMailInput, type(None), policies.MAIL)
