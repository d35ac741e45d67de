"""Both processors' clients, built one way for the API (webhook checks) and the worker (payments).

The adapter is given the processors' accounts (`settings.PspSettings` is one, its secrets opened);
it never reads settings itself."""

from __future__ import annotations

from typing import Protocol

from pydantic import SecretStr

from psp_adapter.bankco import BankCo
from psp_adapter.cardco import CardCo
from psp_adapter.gateway import PaymentProvider


class ProcessorAccounts(Protocol):
    @property
    def base_url(self) -> str: ...
    @property
    def cardco_api_key(self) -> SecretStr: ...
    @property
    def cardco_webhook_secret(self) -> SecretStr: ...
    @property
    def bankco_api_key(self) -> SecretStr: ...
    @property
    def bankco_webhook_secret(self) -> SecretStr: ...


def payment_providers(accounts: ProcessorAccounts) -> dict[str, PaymentProvider]:
    """One client per processor, by its name; `accounts` must hold the secrets opened."""
    providers: list[PaymentProvider] = [
        CardCo(accounts.base_url, accounts.cardco_api_key, accounts.cardco_webhook_secret),
        BankCo(accounts.base_url, accounts.bankco_api_key, accounts.bankco_webhook_secret),
    ]
    return {provider.name: provider for provider in providers}
