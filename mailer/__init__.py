"""Outgoing mail: the `Mailer` protocol, its SMTP implementation and the mail templates."""

from mailer.smtp import (
    InMemoryMailer,
    Mailer,
    MailError,
    MailRejected,
    MailUnavailable,
    OutgoingMail,
    SmtpMailer,
    stable_message_id,
)
from mailer.templates import MailTemplate, render

__all__ = [
    "InMemoryMailer",
    "MailError",
    "MailRejected",
    "MailTemplate",
    "MailUnavailable",
    "Mailer",
    "OutgoingMail",
    "SmtpMailer",
    "render",
    "stable_message_id",
]
