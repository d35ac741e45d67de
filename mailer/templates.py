"""The mails BrokerFlow sends, as Jinja2 templates: `render(name, **context)` → subject, text, html.

Each template is three files under `mailer/templates/`: `<name>.subject.txt`, `<name>.txt` and
`<name>.html` (the HTML ones extend `_layout.html` and are autoescaped). A variable the template
needs but the caller did not give is an error, not a blank. Optional everywhere: `broker_name`,
`support_email`.

No mail carries a password or any other credential: `render` refuses a context that holds one.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATE_DIR: Final = Path(__file__).resolve().parent / "templates"
# Context names that would carry a credential (compared word by word: `mt5_password`, `pin`).
_CREDENTIAL_WORDS: Final = frozenset(
    {"password", "passwd", "passphrase", "pass", "secret", "pin", "otp", "totp", "credentials"}
)


class MailTemplate(StrEnum):
    EMAIL_VERIFICATION = "email_verification"
    KYC_INFO_REQUESTED = "kyc_info_requested"
    KYC_APPROVED = "kyc_approved"
    KYC_REJECTED = "kyc_rejected"
    REMINDER = "reminder"
    LIVE_ACCOUNT_READY = "live_account_ready"
    LEVERAGE_CHANGE_DECIDED = "leverage_change_decided"
    PASSWORD_RESET = "password_reset"
    SIGNUP_WITH_YOUR_EMAIL = "signup_with_your_email"


_environment = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render(template_name: str, **context: Any) -> tuple[str, str, str]:
    """The subject (one line), plain-text body and HTML body of one mail."""
    try:
        name = MailTemplate(template_name)
    except ValueError:
        known = ", ".join(template.value for template in MailTemplate)
        raise ValueError(f"no mail template {template_name!r} (known: {known})") from None
    credentials = sorted(
        key for key in context if _CREDENTIAL_WORDS & set(key.lower().replace("-", "_").split("_"))
    )
    if credentials:
        raise ValueError(f"mail templates never carry credentials; drop {credentials}")
    subject = _environment.get_template(f"{name.value}.subject.txt").render(**context)
    text = _environment.get_template(f"{name.value}.txt").render(**context)
    html = _environment.get_template(f"{name.value}.html").render(**context)
    return " ".join(subject.split()), text, html
