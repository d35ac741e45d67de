"""Secrets out of log lines: query-string credentials, bearer tokens, JWTs and JSON secret
fields are replaced by `[REDACTED]` before a line is written anywhere.

Installed on the API's log handlers (uvicorn's access log included: `GET
/v1/verify-email?token=[REDACTED]`), and used by `make run` for every line a child process
writes to `.data/logs/*.log`.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[REDACTED]"
# Query or form parameters whose value is a credential.
SECRET_PARAMETERS = (
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "totp_code",
    "password",
    "new_password",
    "secret",
    "client_secret",
    "api_key",
    "apikey",
    "key",
    "signature",
    "sig",
)
_QUERY = re.compile(r"(?i)([?&;](?:" + "|".join(SECRET_PARAMETERS) + r")=)[^&\s\"'#]+")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+")
_JSON_FIELD = re.compile(
    r"(?i)(\"(?:password|new_password|refresh_token|access_token|totp_secret|totp_code|secret|token)\"\s*:\s*\")"
    r"[^\"]*(\")"
)


def redact(text: str) -> str:
    text = _QUERY.sub(rf"\1{REDACTED}", text)
    text = _BEARER.sub(rf"\1{REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    return _JSON_FIELD.sub(rf"\1{REDACTED}\2", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record whose formatted message holds a secret (uvicorn's access-log path
    arrives as an argument: the message is formatted first, then redacted)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install(*loggers: str) -> None:
    """Redact every record reaching the root handlers and the named loggers (uvicorn's access
    and error loggers propagate to the root once `log_config=None`)."""
    redacting = RedactingFilter()
    for handler in logging.getLogger().handlers:
        handler.addFilter(redacting)
    for name in loggers:
        logging.getLogger(name).addFilter(redacting)
