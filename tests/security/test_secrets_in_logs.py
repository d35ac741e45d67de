"""Secrets stay out of logs: access-log lines, every line `make run` writes to .data/logs, and
the API refuses to face the network with the published dev secrets."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from api.redaction import RedactingFilter, redact
from api.startup import UnsafeListen, check_listen
from ops.processes import Child
from settings import Settings

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjMiLCJraW5kIjoic3RhZmYifQ."
    "c2lnbmF0dXJlLXNpZ25hdHVyZQ"
)
VERIFY = "3f0c9d2e6c7b4e1f9a8b7c6d5e4f3a2b.1767225600.b64sig_Abc-123"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f'127.0.0.1:5000 - "GET /v1/verify-email?token={VERIFY} HTTP/1.1" 200', VERIFY),
        ("POST /x?state=x&totp_code=987654&next=/ HTTP/1.1", "987654"),
        ("GET /x?access_token=abc.def.ghi&page=2", "abc.def.ghi"),
        ("Authorization: Bearer s3cr3t-t0ken.value", "s3cr3t-t0ken.value"),
        (f"token issued {JWT}", JWT),
        ('{"email": "a@b.c", "password": "Dev-abcdef123"}', "Dev-abcdef123"),
        ('{"refresh_token": "0a1b.c2d3"}', "0a1b.c2d3"),
        ('{"token": "r.e.s.e.t", "new_password": "Fresh-pass-2026"}', "Fresh-pass-2026"),
    ],
)
def test_redact_removes_the_secret_and_keeps_the_rest(line: str, secret: str) -> None:
    cleaned = redact(line)
    assert secret not in cleaned
    assert "[REDACTED]" in cleaned


def test_redact_leaves_ordinary_lines_alone() -> None:
    for line in (
        '127.0.0.1:5000 - "GET /v1/finance/payments?status=held&limit=50 HTTP/1.1" 200',
        '127.0.0.1:5000 - "GET /console/ledger?code=wallet:0a1b:USD HTTP/1.1" 200',
    ):
        assert redact(line) == line


def test_the_access_log_line_is_redacted_as_uvicorn_writes_it() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("uvicorn.access.test-redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        # uvicorn's access logger: the path is an argument of the format string.
        logger.warning(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            f"/v1/verify-email?token={VERIFY}",
            "1.1",
            200,
        )
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert VERIFY not in text
    assert '"GET /v1/verify-email?token=[REDACTED] HTTP/1.1" 200' in text


def test_lines_a_child_prints_reach_its_log_file_redacted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = (
        f"print('GET /v1/verify-email?token={VERIFY} 200');"
        "print('Authorization: Bearer abc.def.ghi');"
        "print('plain line')"
    )
    log = tmp_path / "api.log"
    child = Child("api", [sys.executable, "-c", code], {}, tmp_path, log_file=log)
    child.start()
    assert child.wait(30) == 0
    written = log.read_text()
    shown = capsys.readouterr().out
    for text in (written, shown):
        assert VERIFY not in text and "abc.def.ghi" not in text
        assert "plain line" in text
    assert "token=[REDACTED]" in written


def dev_settings(**values: object) -> Settings:
    return Settings.model_validate({"env": "dev", **values, "_env_file": None})


def test_dev_secrets_warn_on_loopback_and_refuse_anything_else() -> None:
    warning = check_listen(dev_settings(api_host="127.0.0.1"))
    assert warning and "BROKERFLOW_JWT_SECRET" in warning and "DEV SECRETS" in warning
    for host in ("0.0.0.0", "192.0.2.10", "::"):
        with pytest.raises(UnsafeListen, match="refusing to listen"):
            check_listen(dev_settings(api_host=host))


def test_set_secrets_listen_anywhere_without_a_warning() -> None:
    from cryptography.fernet import Fernet

    settings = dev_settings(
        api_host="0.0.0.0",
        jwt_secret=SecretStr("a-real-secret-of-enough-length-0123456789"),
        secrets_key=SecretStr(Fernet.generate_key().decode()),
        documents_key=SecretStr(Fernet.generate_key().decode()),
    )
    assert check_listen(settings) is None
