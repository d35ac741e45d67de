"""Outgoing mail over SMTP (stdlib smtplib, run in a worker thread).

Failures come out as one of two exceptions, which is what a caller's retry policy needs:
`MailUnavailable` (retry later: the server is down, busy, or refuses our login or sender until
someone fixes the configuration) and `MailRejected` (do not retry: the server permanently
refuses this recipient or this message).

A retried send carries the caller's `message_id`, so a message that did get through before the
failure reaches the recipient's mail system twice with one Message-ID, which lets it be spotted.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Protocol

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"[^\s@<>,;:\"()\[\]\\]{1,64}@[^\s@<>,;:\"()\[\]\\]{1,253}")
_MESSAGE_ID = re.compile(r"<[^\s<>@]{1,200}@[^\s<>@]{1,200}>")
_LINE_BREAK = re.compile(r"[\r\n]")


class MailError(Exception):
    retryable: bool = False


class MailUnavailable(MailError):
    """The mail could not be handed over now; sending it again later may work."""

    retryable = True


class MailRejected(MailError):
    """The server permanently refused the recipient or the message; do not send it again."""

    retryable = False


class OutgoingMail(BaseModel):
    """One message to one recipient. `message_id` is the caller's stable id (`<…@…>`, or
    without the brackets), the same for every attempt at sending this message."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    to: str
    subject: str
    text: str
    html: str | None = None
    message_id: str

    @field_validator("to")
    @classmethod
    def _one_plain_address(cls, value: str) -> str:
        if len(value) > 254 or not _ADDRESS.fullmatch(value):
            raise ValueError("to must be one plain e-mail address (name@domain)")
        return value

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if _LINE_BREAK.search(value):
            raise ValueError("a subject is one line")
        if not value:
            raise ValueError("a subject is required")
        return value

    @field_validator("message_id")
    @classmethod
    def _bracketed(cls, value: str) -> str:
        bracketed = value if value.startswith("<") else f"<{value}>"
        if not _MESSAGE_ID.fullmatch(bracketed):
            raise ValueError("message_id must look like <unique-part@domain>")
        return bracketed


def stable_message_id(*parts: object, domain: str) -> str:
    """A Message-ID derived from what identifies the mail (e.g. workflow id and template), so
    every attempt at sending it carries the same one."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


class Mailer(Protocol):
    async def send(self, message: OutgoingMail) -> None: ...


class InMemoryMailer:
    """Keeps what it is given (for tests of code that sends mail); `fail_with` is raised instead."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []
        self.fail_with: MailError | None = None

    async def send(self, message: OutgoingMail) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: SecretStr | None = None,
        timeout: float = 10,
    ) -> None:
        if not _ADDRESS.fullmatch(parseaddr(sender)[1]) or _LINE_BREAK.search(sender):
            raise ValueError("sender must be an address, e.g. 'Broker <no-reply@broker.example>'")
        if (username is None) != (password is None):
            raise ValueError("give both an SMTP username and password, or neither")
        if username is not None and not starttls and not _is_loopback(host):
            raise ValueError("an SMTP login over the network needs starttls=True")
        self.host = host
        self.port = port
        self.sender = sender
        self.starttls = starttls
        self.username = username
        self._password = password
        self.timeout = timeout

    def __repr__(self) -> str:
        login = f", username={self.username!r}, password=**********" if self.username else ""
        return (
            f"SmtpMailer({self.host!r}, {self.port}, {self.sender!r}, "
            f"starttls={self.starttls}{login})"
        )

    def build(self, message: OutgoingMail) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        email["Message-ID"] = message.message_id
        email["Date"] = format_datetime(datetime.now(UTC))
        # Transactional mail: no out-of-office replies to it (RFC 3834).
        email["Auto-Submitted"] = "auto-generated"
        email.set_content(message.text)
        if message.html is not None:
            email.add_alternative(message.html, subtype="html")
        return email

    async def send(self, message: OutgoingMail) -> None:
        email = self.build(message)
        await asyncio.to_thread(self._send, email, message.to)
        log.info(
            "mail sent",
            extra={"message_id": message.message_id, "recipient_domain": _domain(message.to)},
        )

    def _send(self, email: EmailMessage, to: str) -> None:
        where = f"{self.host}:{self.port}"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username is not None and self._password is not None:
                    smtp.login(self.username, self._password.get_secret_value())
                refused = smtp.send_message(email, to_addrs=[to])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = exc.recipients.get(to, next(iter(exc.recipients.values()), (0, b"")))
            raise _classified(code, reply, f"the server refused recipient {to}") from exc
        except smtplib.SMTPDataError as exc:
            raise _classified(
                exc.smtp_code, exc.smtp_error, "the server refused the message"
            ) from exc
        except smtplib.SMTPSenderRefused as exc:
            raise MailUnavailable(
                f"{where} refused the sender {exc.sender}: {_reply(exc.smtp_code, exc.smtp_error)}"
                " (check the configured sender)"
            ) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise MailUnavailable(
                f"{where} refused the SMTP login of {self.username!r}: "
                f"{_reply(exc.smtp_code, exc.smtp_error)}"
            ) from None  # smtplib's frames of login() hold the password: not chained
        except smtplib.SMTPNotSupportedError as exc:
            raise MailUnavailable(f"{where} does not support what is configured: {exc}") from exc
        except smtplib.SMTPResponseException as exc:
            raise MailUnavailable(
                f"{where} answered {_reply(exc.smtp_code, exc.smtp_error)}"
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, TLS, disconnected
            raise MailUnavailable(
                f"cannot hand mail to {where}: {type(exc).__name__}: {exc}"
            ) from exc
        if to in refused:  # only when some of several recipients were refused
            code, reply = refused[to]
            raise _classified(code, reply, f"the server refused recipient {to}")


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    return f"{code} {text}".strip()


def _classified(code: int, reply: bytes | str, what: str) -> MailError:
    if 500 <= code < 600:
        return MailRejected(f"{what}: {_reply(code, reply)}")
    return MailUnavailable(f"{what} for now: {_reply(code, reply)}")


def _domain(address: str) -> str:
    return address.rpartition("@")[2]
