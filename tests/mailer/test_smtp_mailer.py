"""SmtpMailer against the SMTP catcher simulator (a real child process on free ports), and the
mail templates rendered and sent through it."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError
from pydantic import SecretStr, ValidationError

from mailer import (
    InMemoryMailer,
    MailRejected,
    MailTemplate,
    MailUnavailable,
    OutgoingMail,
    SmtpMailer,
    render,
    stable_message_id,
)
from tests.support.processes import SmtpCatcher, free_port, start_smtp_catcher

SENDER = "Example Broker <no-reply@broker.example>"
PASSWORD = "s3cret-Pa55word-never-logged"


@pytest.fixture(scope="module")
def catcher(artifacts_dir: Path) -> Iterator[SmtpCatcher]:
    started = start_smtp_catcher(artifacts_dir)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def auth_catcher(artifacts_dir: Path) -> Iterator[SmtpCatcher]:
    started = start_smtp_catcher(artifacts_dir, extra=["--auth", f"mailer:{PASSWORD}"])
    yield started
    started.stop()


def mailer_for(catcher: SmtpCatcher, **options: Any) -> SmtpMailer:
    return SmtpMailer("127.0.0.1", catcher.smtp_port, SENDER, **options)


def address(prefix: str = "client") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def mail(to: str, **fields: Any) -> OutgoingMail:
    values: dict[str, Any] = {
        "to": to,
        "subject": "Hello",
        "text": "Plain body\n",
        "message_id": f"<{uuid.uuid4().hex}@broker.example>",
    }
    values.update(fields)
    return OutgoingMail(**values)


# -- delivery -------------------------------------------------------------------------------------


async def test_text_and_html_mail_arrives_as_sent(catcher: SmtpCatcher) -> None:
    to = address()
    subject, text, html = render(MailTemplate.KYC_APPROVED, name="Ann", portal_url="https://p.ex")
    message = mail(to, subject=subject, text=text, html=html, message_id="kyc-1@broker.example")
    await mailer_for(catcher).send(message)

    [caught] = catcher.messages(to=to)
    assert caught["message_id"] == "<kyc-1@broker.example>"
    assert caught["from"] == SENDER
    assert caught["to"] == [to]
    assert caught["subject"] == subject == "Your account is verified"
    assert caught["text"] == text
    assert caught["html"] == html
    assert catcher.message(caught["id"]).json() == caught


async def test_text_only_and_non_ascii(catcher: SmtpCatcher) -> None:
    to = address()
    subject = "Vérification réussie — Zoë 山田"
    text = "Chère Zoë,\nvotre compte est vérifié. 山田さん、ようこそ。\n"
    await mailer_for(catcher).send(mail(to, subject=subject, text=text))
    [caught] = catcher.messages(to=to)
    assert (caught["subject"], caught["text"], caught["html"]) == (subject, text, None)


async def test_a_retried_send_carries_the_same_message_id(catcher: SmtpCatcher) -> None:
    to = address()
    message_id = stable_message_id("workflow-42", "kyc_approved", domain="broker.example")
    assert message_id == stable_message_id("workflow-42", "kyc_approved", domain="broker.example")
    assert message_id != stable_message_id("workflow-43", "kyc_approved", domain="broker.example")
    mailer = mailer_for(catcher)
    await mailer.send(mail(to, message_id=message_id))
    await mailer.send(mail(to, message_id=message_id))  # e.g. the activity retried
    assert [m["message_id"] for m in catcher.messages(to=to)] == [message_id, message_id]


async def test_every_template_renders_and_is_delivered(catcher: SmtpCatcher) -> None:
    mailer = mailer_for(catcher)
    for template in MailTemplate:
        to = address(template.value.replace("_", "-"))
        subject, text, html = render(template, **CONTEXT)
        await mailer.send(
            mail(to, subject=subject, text=text, html=html, message_id=f"{template}@b.example")
        )
        [caught] = catcher.messages(to=to)
        assert (caught["subject"], caught["text"], caught["html"]) == (subject, text, html)


# -- failures -------------------------------------------------------------------------------------


async def test_nothing_listening_is_unavailable() -> None:
    mailer = SmtpMailer("127.0.0.1", free_port(), SENDER, timeout=2)
    with pytest.raises(MailUnavailable) as caught:
        await mailer.send(mail(address()))
    assert caught.value.retryable
    assert "ConnectionRefusedError" in str(caught.value)


async def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections (backlog) but never sends a greeting
        mailer = SmtpMailer("127.0.0.1", silent.getsockname()[1], SENDER, timeout=0.5)
        with pytest.raises(MailUnavailable):
            await mailer.send(mail(address()))


async def test_permanent_refusal_is_rejected(catcher: SmtpCatcher) -> None:
    to = address("reject")
    with pytest.raises(MailRejected) as caught:
        await mailer_for(catcher).send(mail(to))
    assert not caught.value.retryable
    assert "550" in str(caught.value)
    assert catcher.messages(to=to) == []


async def test_temporary_refusal_is_unavailable(catcher: SmtpCatcher) -> None:
    to = address("tempfail")
    with pytest.raises(MailUnavailable, match="451"):
        await mailer_for(catcher).send(mail(to))
    assert catcher.messages(to=to) == []


async def test_starttls_not_offered_is_unavailable(catcher: SmtpCatcher) -> None:
    with pytest.raises(MailUnavailable, match="STARTTLS"):
        await mailer_for(catcher, starttls=True).send(mail(address()))


# -- login ----------------------------------------------------------------------------------------


async def test_login_and_the_password_never_shows(
    auth_catcher: SmtpCatcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    to = address()
    good = mailer_for(auth_catcher, username="mailer", password=SecretStr(PASSWORD))
    await good.send(mail(to))
    assert len(auth_catcher.messages(to=to)) == 1

    bad = mailer_for(auth_catcher, username="mailer", password=SecretStr("wrong-" + PASSWORD))
    with pytest.raises(MailUnavailable, match="login") as caught:
        await bad.send(mail(to))
    assert "535" in str(caught.value)

    anonymous = mailer_for(auth_catcher)
    with pytest.raises(MailUnavailable):
        await anonymous.send(mail(to))
    assert len(auth_catcher.messages(to=to)) == 1

    shown = [caplog.text, str(caught.value), repr(caught.value), repr(good), repr(bad)]
    assert not any(PASSWORD in text for text in shown)
    assert "**********" in repr(good)


def test_configuration_checked() -> None:
    with pytest.raises(ValueError, match="starttls"):
        SmtpMailer("smtp.example.com", 587, SENDER, username="u", password=SecretStr("p"))
    SmtpMailer(
        "smtp.example.com", 587, SENDER, starttls=True, username="u", password=SecretStr("p")
    )
    SmtpMailer("localhost", 25, SENDER, username="u", password=SecretStr("p"))
    with pytest.raises(ValueError, match="both"):
        SmtpMailer("127.0.0.1", 25, SENDER, username="u")
    for sender in ("", "no address", "a@b.example\r\nBcc: x@y.example"):
        with pytest.raises(ValueError):
            SmtpMailer("127.0.0.1", 25, sender)


# -- the message ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "to",
    ["", "two@a.example, three@b.example", "a@b.example\r\nBcc: c@d.example", "Ann <a@b.example>"],
)
def test_one_plain_recipient(to: str) -> None:
    with pytest.raises(ValidationError):
        mail(to)


def test_message_fields_checked() -> None:
    with pytest.raises(ValidationError):
        mail("a@b.example", subject="Hello\r\nBcc: c@d.example")
    with pytest.raises(ValidationError):
        mail("a@b.example", subject="  ")
    for bad in ("no-at-sign", "<a@b> trailing", "a b@c"):
        with pytest.raises(ValidationError):
            mail("a@b.example", message_id=bad)
    assert mail("a@b.test", message_id="x.1@b.example").message_id == "<x.1@b.example>"
    message = mail("a@b.example")
    with pytest.raises(ValidationError):
        message.subject = "changed"  # type: ignore[misc]


def test_built_message_headers() -> None:
    mailer = SmtpMailer("127.0.0.1", 25, SENDER)
    email = mailer.build(mail("a@b.example", html="<p>x</p>", message_id="<m@b.example>"))
    assert email["Message-ID"] == "<m@b.example>"
    assert email["Auto-Submitted"] == "auto-generated"
    assert email.get_content_type() == "multipart/alternative"
    assert email["Date"]


async def test_in_memory_mailer() -> None:
    mailer = InMemoryMailer()
    await mailer.send(mail("a@b.example"))
    assert [m.to for m in mailer.sent] == ["a@b.example"]
    mailer.fail_with = MailUnavailable("down")
    with pytest.raises(MailUnavailable):
        await mailer.send(mail("a@b.example"))


# -- templates ------------------------------------------------------------------------------------

CONTEXT: dict[str, Any] = {
    "name": "Ann <Example> & Co",
    "verify_url": "https://portal.example/verify?token=abc&x=1",
    "reset_url": "https://portal.example/reset-password#token=abc.def",
    "expires_in_minutes": 30,
    "expires_in_hours": 48,
    "missing": ["a passport or national ID", "a proof of address under 90 days old"],
    "note": "The photo page was cut off.",
    "portal_url": "https://portal.example/kyc",
    "reason": "The documents did not match <the application>.",
    "waiting_for": ["a selfie"],
    "since": date(2025, 6, 1),
    "login": 5000123,
    "server": "Broker-Live-1",
    "approved": True,
    "leverage": 200,
    "broker_name": "Example Broker",
    "support_email": "support@broker.example",
}


@pytest.mark.parametrize("template", list(MailTemplate))
def test_template_renders(template: MailTemplate) -> None:
    subject, text, html = render(template.value, **CONTEXT)
    assert subject and "\n" not in subject
    assert text.startswith("Dear Ann <Example> & Co,")
    assert "Dear Ann &lt;Example&gt; &amp; Co," in html  # autoescaped
    assert "<Example>" not in html
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert "Example Broker" in text and "Example Broker" in html
    assert "support@broker.example" in text


def test_template_contents() -> None:
    _, text, html = render("email_verification", **CONTEXT)
    assert "https://portal.example/verify?token=abc&x=1" in text
    assert 'href="https://portal.example/verify?token=abc&amp;x=1"' in html
    assert "48 hours" in text
    _, text, _ = render("kyc_info_requested", **CONTEXT)
    assert "a proof of address under 90 days old" in text and "upload them" in text
    assert "The photo page was cut off." in text
    subject, text, _ = render("leverage_change_decided", **CONTEXT)
    assert subject == "Your leverage change for account 5000123 was approved"
    assert "1:200" in text
    subject, _, _ = render("leverage_change_decided", **{**CONTEXT, "approved": False})
    assert subject.endswith("was declined")
    _, text, _ = render("reminder", **CONTEXT)
    assert "since 2025-06-01" in text
    # Optional parts may be left out.
    subject, text, _ = render("kyc_rejected", name="Bob", reason="expired passport")
    assert "Reason: expired passport" in text and "BrokerFlow" in text


def test_live_account_ready_never_carries_a_password() -> None:
    subject, text, html = render("live_account_ready", **CONTEXT)
    assert subject == "Your live trading account 5000123 is ready"
    assert "5000123" in text and "Broker-Live-1" in text and "Broker-Live-1" in html
    assert "only once" in text and "does not contain your password" in text
    for credential in ("password", "mt5_password", "investor_password", "pin", "otp_secret"):
        with pytest.raises(ValueError, match="credentials"):
            render("live_account_ready", **{**CONTEXT, credential: "Secret#123"})


def test_unknown_template_and_missing_context() -> None:
    with pytest.raises(ValueError, match="no mail template"):
        render("welcome_bonus", **CONTEXT)
    with pytest.raises(UndefinedError):
        render("email_verification", name="Ann")  # verify_url missing
