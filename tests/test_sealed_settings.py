"""MT5 manager passwords sealed at rest (envelope encryption) and opened in memory only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from settings import (
    DEV_ONLY,
    SEALED_PREFIX,
    Mt5ServerSettings,
    PspSettings,
    Settings,
    open_secret,
    seal_secret,
)

MASTER = SecretStr("a2V5LWtleS1rZXkta2V5LWtleS1rZXkta2V5LWtleSE=")
OTHER_MASTER = SecretStr("b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXkhIT0=")
ROOT = Path(__file__).resolve().parents[1]


def test_sealing_round_trips_and_hides_the_value() -> None:
    sealed = seal_secret("Manager#1", MASTER)
    assert sealed.startswith(SEALED_PREFIX) and "Manager#1" not in sealed
    assert seal_secret("Manager#1", MASTER) != sealed  # a fresh data key every time
    assert open_secret(sealed, MASTER).get_secret_value() == "Manager#1"
    with pytest.raises(ValueError, match="does not open"):
        open_secret(sealed, OTHER_MASTER)


def test_sealed_manager_passwords_open_for_the_gateway_only() -> None:
    settings = Settings(
        secrets_key=MASTER,
        mt5=Mt5ServerSettings(manager_password=SecretStr(seal_secret("Live#Pass1", MASTER))),
        mt5_servers=[
            Mt5ServerSettings(
                name="live-2", manager_password=SecretStr(seal_secret("Two#Pass2", MASTER))
            )
        ],
    )
    assert [s.opened(MASTER).manager_password.get_secret_value() for s in settings.mt5_fleet()] == [
        "Live#Pass1",
        "Two#Pass2",
    ]
    assert "Live#Pass1" not in repr(settings)


def production(**values: object) -> Settings:
    return Settings.model_validate({"env": "prod", **values})


def test_prod_refuses_dev_secrets_and_plain_manager_passwords() -> None:
    sealed = {"manager_password": seal_secret("P#1", MASTER)}
    psp = {name: seal_secret(f"{name}-value", MASTER) for name in PspSettings().secret_fields()}
    keys = {"jwt_secret": "j" * 40, "secrets_key": MASTER, "documents_key": "d" * 44}
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        production(secrets_key=MASTER, mt5=sealed, psp=psp)
    with pytest.raises(ValidationError, match="DOCUMENTS_KEY"):
        production(**{**keys, "documents_key": DEV_ONLY["documents_key"]}, mt5=sealed, psp=psp)
    with pytest.raises(ValidationError, match="sealed"):
        production(**keys, mt5={"manager_password": "Plain#1"}, psp=psp)
    with pytest.raises(
        ValidationError, match="BROKERFLOW_PSP__BANKCO_API_KEY must be given sealed"
    ):
        production(**keys, mt5=sealed, psp={**psp, "bankco_api_key": "k"})
    hook = "https://desk.example.com/hooks/risk"
    with pytest.raises(ValidationError, match="RISK__WEBHOOK_SECRET must be given sealed"):
        production(
            **keys, mt5=sealed, psp=psp, risk={"webhook_url": hook, "webhook_secret": "s" * 20}
        )
    risk = {"webhook_url": hook, "webhook_secret": seal_secret("s" * 20, MASTER)}
    webhook_secret = production(**keys, mt5=sealed, psp=psp, risk=risk).risk.opened(MASTER)
    assert (webhook_secret.webhook_secret or SecretStr("")).get_secret_value() == "s" * 20
    settings = production(**keys, mt5=sealed, psp=psp)
    assert settings.mt5.opened(MASTER).manager_password.get_secret_value() == "P#1"
    opened = settings.psp.opened(MASTER)
    assert opened.cardco_webhook_secret.get_secret_value() == "cardco_webhook_secret-value"


def test_the_seal_command_reads_stdin() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ops.seal"],
        input="Manager#1\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"BROKERFLOW_SECRETS_KEY": MASTER.get_secret_value(), "PATH": ""},
        check=True,
    )
    assert open_secret(result.stdout.strip(), MASTER).get_secret_value() == "Manager#1"
