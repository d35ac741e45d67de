"""The SMTP catcher simulator, driven with the standard library's smtplib (not BrokerFlow's mailer):
messages kept and shown over HTTP, provoked refusals, AUTH, and its in-memory mailbox."""

from __future__ import annotations

import ast
import smtplib
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from simulators.smtp.catcher import Mailbox, parse
from tests.support.processes import SmtpCatcher, start_smtp_catcher

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def catcher(artifacts_dir: Path) -> Iterator[SmtpCatcher]:
    started = start_smtp_catcher(artifacts_dir)
    yield started
    started.stop()


def address(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def message(
    to: str, subject: str = "Hi", text: str | None = "Body\n", html: str | None = None
) -> EmailMessage:
    email = EmailMessage()
    email["From"] = "Sender <sender@example.org>"
    email["To"] = to
    email["Subject"] = subject
    email["Message-ID"] = f"<{uuid.uuid4().hex}@example.org>"
    if text is not None:
        email.set_content(text)
        if html is not None:
            email.add_alternative(html, subtype="html")
    elif html is not None:
        email.set_content(html, subtype="html")
    return email


def smtp(catcher: SmtpCatcher) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=10)


def test_health(catcher: SmtpCatcher) -> None:
    body = httpx.get(f"{catcher.base_url}/health").json()
    assert body["status"] == "ok"
    assert isinstance(body["messages"], int)


def test_message_kept_with_every_envelope_recipient(catcher: SmtpCatcher) -> None:
    to, cc, bcc = address("to"), address("cc"), address("bcc")
    email = message(to, subject="Statement", text="Your statement\n", html="<p>Your statement</p>")
    email["Cc"] = cc
    with smtp(catcher) as client:
        client.send_message(email, to_addrs=[to, cc, bcc])

    for recipient in (to, cc, bcc, bcc.upper()):
        [found] = catcher.messages(to=recipient)
        assert found["to"] == [to, cc, bcc]
    assert set(found) == {
        "id",
        "message_id",
        "from",
        "to",
        "subject",
        "text",
        "html",
        "received_at",
    }
    assert found["message_id"] == email["Message-ID"]
    assert found["from"] == "Sender <sender@example.org>"
    assert found["subject"] == "Statement"
    assert found["text"] == "Your statement\n"
    assert found["html"] == "<p>Your statement</p>\n"
    assert found["received_at"].endswith("+00:00")
    assert found in catcher.messages()

    one = catcher.message(found["id"])
    assert one.status_code == 200 and one.json() == found
    raw = httpx.get(f"{catcher.base_url}/messages/{found['id']}/raw")
    assert raw.headers["content-type"].startswith("message/rfc822")
    assert f"Message-ID: {email['Message-ID']}".encode() in raw.content


def test_unknown_message_is_404(catcher: SmtpCatcher) -> None:
    assert catcher.message("nope").status_code == 404
    assert httpx.get(f"{catcher.base_url}/messages/nope/raw").status_code == 404


def test_html_only_and_encoded_headers(catcher: SmtpCatcher) -> None:
    to = address()
    subject = "Konto bestätigt — Zoë 山田"
    with smtp(catcher) as client:
        client.send_message(message(to, subject=subject, text=None, html="<b>Grüße</b>"))
    [found] = catcher.messages(to=to)
    assert found["subject"] == subject
    assert found["text"] is None
    assert found["html"] == "<b>Grüße</b>\n"


def test_refusals_provoked_by_the_recipient(catcher: SmtpCatcher) -> None:
    rejected, later, fine = address("reject"), address("tempfail"), address()
    with smtp(catcher) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
            client.send_message(message(rejected))
        assert caught.value.recipients[rejected][0] == 550
    with smtp(catcher) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
            client.send_message(message(later))
        assert caught.value.recipients[later][0] == 451
    with smtp(catcher) as client:
        refused = client.send_message(message(fine), to_addrs=[fine, rejected])
    assert refused[rejected][0] == 550
    [found] = catcher.messages(to=fine)
    assert found["to"] == [fine]
    assert catcher.messages(to=rejected) == [] and catcher.messages(to=later) == []


def test_parallel_senders(catcher: SmtpCatcher) -> None:
    recipients = [address("parallel") for _ in range(20)]

    def send(to: str) -> None:
        with smtp(catcher) as client:
            client.send_message(message(to))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, recipients))
    for to in recipients:
        assert len(catcher.messages(to=to)) == 1


def test_delete_clears_everything(catcher: SmtpCatcher) -> None:
    with smtp(catcher) as client:
        client.send_message(message(address()))
    before = len(catcher.messages())
    assert before >= 1
    assert catcher.clear() == before
    assert catcher.messages() == []
    assert httpx.get(f"{catcher.base_url}/health").json()["messages"] == 0


def test_auth_required_when_configured(artifacts_dir: Path) -> None:
    catcher = start_smtp_catcher(artifacts_dir, extra=["--auth", "dev:dev-password"])
    try:
        to = address()
        with smtp(catcher) as client:
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.send_message(message(to))
            assert refused.value.smtp_code == 530
        with smtp(catcher) as client, pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("dev", "wrong")
        with smtp(catcher) as client:
            client.login("dev", "dev-password")
            client.send_message(message(to))
        assert len(catcher.messages(to=to)) == 1
    finally:
        catcher.stop()


# -- in process -----------------------------------------------------------------------------------


def raw_message(to: str) -> bytes:
    return message(to).as_bytes()


def test_mailbox_drops_the_oldest_beyond_capacity() -> None:
    mailbox = Mailbox(capacity=3)
    kept = [
        parse(raw_message(f"u{i}@example.com"), "s@example.org", [f"u{i}@example.com"])
        for i in range(5)
    ]
    for caught in kept:
        mailbox.add(caught)
    assert [m.to for m in mailbox.messages()] == [
        ["u2@example.com"],
        ["u3@example.com"],
        ["u4@example.com"],
    ]
    assert mailbox.get(kept[0].id) is None
    assert mailbox.get(kept[4].id) == kept[4]


def test_mailbox_is_thread_safe() -> None:
    mailbox = Mailbox()
    template = parse(raw_message("t@example.com"), "s@example.org", ["t@example.com"])

    def add_many() -> None:
        for _ in range(200):
            mailbox.add(parse(template.raw, "s@example.org", ["t@example.com"]))
            mailbox.messages(to="t@example.com")

    threads = [threading.Thread(target=add_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(mailbox) == 1600
    assert len({m.id for m in mailbox.messages()}) == 1600


def test_the_catcher_shares_no_code_with_brokerflow() -> None:
    brokerflow = {
        "activities", "api", "db", "domain", "mailer", "mt5_adapter", "observability", "ops",
        "psp_adapter", "reports", "settings", "storage", "worker", "workflows", "tests",
    }  # fmt: skip
    for path in sorted((ROOT / "simulators" / "smtp").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert not roots & brokerflow, f"{path.relative_to(ROOT)} imports {roots}"
