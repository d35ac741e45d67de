"""An SMTP server that delivers nowhere: every accepted message is kept in memory and shown over
HTTP.

Recipients can provoke refusals, to exercise a sender's error handling: a local part starting
with `reject` is refused permanently (`550 5.1.1`), one starting with `tempfail` temporarily
(`451 4.3.0`). With `--auth USER:PASSWORD` the server offers AUTH PLAIN/LOGIN without TLS (it is
a local tool) and requires it before MAIL.

HTTP: `GET /messages[?to=addr]`, `GET /messages/{id}`, `GET /messages/{id}/raw`,
`DELETE /messages`, `GET /health`.
"""

from __future__ import annotations

import hmac
import logging
import threading
import uuid
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DEFAULT_CAPACITY = 10_000


@dataclass(frozen=True)
class CaughtMessage:
    id: str
    message_id: str | None
    sender: str
    to: list[str]
    subject: str
    text: str | None
    html: str | None
    received_at: datetime
    raw: bytes = field(repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "message_id": self.message_id,
            "from": self.sender,
            "to": list(self.to),
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "received_at": self.received_at.isoformat(),
        }


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # unknown charset, broken encoding
        payload = part.get_payload(decode=True)
        content = payload.decode(errors="replace") if isinstance(payload, bytes) else None
    # As sent on the wire lines end in CRLF; shown as written.
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


def parse(raw: bytes, envelope_from: str, recipients: list[str]) -> CaughtMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    message_id = message.get("Message-ID")
    return CaughtMessage(
        id=uuid.uuid4().hex,
        message_id=str(message_id).strip() if message_id is not None else None,
        sender=str(message.get("From") or envelope_from),
        to=list(recipients),
        subject=str(message.get("Subject") or ""),
        text=_body(message, "plain"),
        html=_body(message, "html"),
        received_at=datetime.now(UTC),
        raw=raw,
    )


class Mailbox:
    """Messages in arrival order, shared by the SMTP thread and the HTTP server (locked)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._messages: OrderedDict[str, CaughtMessage] = OrderedDict()

    def add(self, message: CaughtMessage) -> None:
        with self._lock:
            self._messages[message.id] = message
            while len(self._messages) > self.capacity:
                self._messages.popitem(last=False)

    def messages(self, to: str | None = None) -> list[CaughtMessage]:
        with self._lock:
            messages = list(self._messages.values())
        if to is None:
            return messages
        wanted = to.strip().lower()
        return [m for m in messages if any(r.lower() == wanted for r in m.to)]

    def get(self, message_id: str) -> CaughtMessage | None:
        with self._lock:
            return self._messages.get(message_id)

    def clear(self) -> int:
        with self._lock:
            count = len(self._messages)
            self._messages.clear()
        return count

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)


class CatcherHandler:
    """aiosmtpd handler: refuses `reject*` / `tempfail*` recipients, keeps every message."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        local = address.partition("@")[0].lower()
        if local.startswith("reject"):
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if local.startswith("tempfail"):
            return f"451 4.3.0 <{address}>: temporarily unavailable, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        message = parse(raw, envelope.mail_from or "", list(envelope.rcpt_tos))
        self.mailbox.add(message)
        return f"250 Message accepted for delivery (id {message.id})"


class Credentials:
    """aiosmtpd authenticator accepting exactly one user name and password."""

    def __init__(self, username: str, password: str) -> None:
        self._username = username.encode()
        self._password = password.encode()

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        good = hmac.compare_digest(auth_data.login, self._username) & hmac.compare_digest(
            auth_data.password, self._password
        )
        # handled=False: aiosmtpd answers the failure itself (535).
        return AuthResult(success=bool(good), handled=False)


def start_smtp(
    mailbox: Mailbox, host: str, port: int, credentials: tuple[str, str] | None = None
) -> Controller:
    """The SMTP server, running in its own thread; `.stop()` it when done."""
    options: dict[str, Any] = {"ident": "SMTP catcher"}
    if credentials is not None:
        # AUTH without TLS is the point of a local catcher; aiosmtpd warns about it.
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        options.update(
            authenticator=Credentials(*credentials), auth_required=True, auth_require_tls=False
        )
    controller = Controller(CatcherHandler(mailbox), hostname=host, port=port, **options)
    controller.start()
    return controller


def build_app(mailbox: Mailbox) -> Starlette:
    async def list_messages(request: Request) -> Response:
        to = request.query_params.get("to")
        return JSONResponse([m.as_json() for m in mailbox.messages(to)])

    async def get_message(request: Request) -> Response:
        message = mailbox.get(request.path_params["id"])
        if message is None:
            return JSONResponse({"error": "no such message"}, status_code=404)
        return JSONResponse(message.as_json())

    async def get_raw(request: Request) -> Response:
        message = mailbox.get(request.path_params["id"])
        if message is None:
            return JSONResponse({"error": "no such message"}, status_code=404)
        return Response(message.raw, media_type="message/rfc822")

    async def delete_messages(request: Request) -> Response:
        return JSONResponse({"deleted": mailbox.clear()})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "messages": len(mailbox)})

    return Starlette(
        routes=[
            Route("/messages", list_messages, methods=["GET"]),
            Route("/messages", delete_messages, methods=["DELETE"]),
            Route("/messages/{id}", get_message, methods=["GET"]),
            Route("/messages/{id}/raw", get_raw, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
