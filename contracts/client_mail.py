"""One email to a client (or to compliance), sent at least once under a stable Message-ID
derived from its key: the `ClientMail` workflow, which the API starts for mail that belongs to
no other process (the sign-up's verification link, a password-reset link, the notice that
someone signed up with the owner's address), and the step every other process runs
itself (`workflows.client_mail.send_mail`), keyed by its own workflow id and the occasion.
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


def client_mail_workflow_id(key: str) -> str:
    return f"mail-{key}"


class ClientMailInput(Contract):
    """One email, sent at least once under a stable Message-ID derived from `key` (a retried
    send carries the same id, so mail clients show it once)."""

    key: str = Field(min_length=1, max_length=150)
    client_id: uuid.UUID
    template: MailTemplate
    context: dict[str, str] = Field(default_factory=dict)


CLIENT_MAIL = Process("ClientMail", ClientMailInput, type(None))

send_client_mail = Step("send_client_mail", ClientMailInput, type(None), policies.MAIL)
