"""BrokerFlow settings, read from `BROKERFLOW_*` environment variables (and `.env`).

Nothing here is read at import time: processes call `get_settings()` once at start-up and pass the
result down, so tests can build their own `Settings(...)`.
"""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken
from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    field_serializer,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.kyc import KycSla
from domain.money import MINOR_UNITS
from domain.payments import PaymentTimers

PROJECT_ROOT = Path(__file__).resolve().parent
# Defaults that make `make run` work out of the box; refused when env is prod.
DEV_ONLY = {
    "jwt_secret": "dev-only-jwt-secret-change-me-0123456789",
    "secrets_key": "ZGV2LW9ubHktc2VjcmV0cy1rZXktY2hhbmdlLW1lISE=",
    "documents_key": "ZGV2LW9ubHktZG9jdW1lbnRzLWtleS0zMi1ieXRlcyE=",
}


SEALED_PREFIX = "sealed:v1:"


def seal_secret(plaintext: str, master_key: SecretStr) -> str:
    """Envelope encryption: a fresh data key encrypts the value, the master key wraps the data key.

    Rotating the master key re-wraps data keys without touching the values they protect.
    """
    data_key = Fernet.generate_key()
    wrapped = Fernet(master_key.get_secret_value().encode()).encrypt(data_key).decode()
    ciphertext = Fernet(data_key).encrypt(plaintext.encode()).decode()
    return f"{SEALED_PREFIX}{wrapped}:{ciphertext}"


def open_secret(sealed: str, master_key: SecretStr) -> SecretStr:
    try:
        wrapped, ciphertext = sealed.removeprefix(SEALED_PREFIX).split(":")
        data_key = Fernet(master_key.get_secret_value().encode()).decrypt(wrapped.encode())
        return SecretStr(Fernet(data_key).decrypt(ciphertext.encode()).decode())
    except (ValueError, InvalidToken) as exc:
        raise ValueError("a sealed secret does not open with BROKERFLOW_SECRETS_KEY") from exc


class Mt5ServerSettings(BaseModel):
    """One MT5 trade server as the Web API sees it."""

    name: str = "demo"
    # What the server is for: "live" (real money) or "demo". Consoles label an account by its
    # own kind and show the server's beside it, never by guessing from the server's name.
    kind: Literal["live", "demo"] = "live"
    # host:port of the access server's Web API
    address: str = "127.0.0.1:8443"
    # Further access servers of the same trade server, tried in turn when one is unreachable.
    backup_addresses: list[str] = Field(default_factory=list)
    manager_login: int = 1000
    # Give it sealed (`python -m ops.seal`): only the sealed form is written anywhere.
    manager_password: SecretStr = SecretStr("Manager#1")
    tls: bool = True
    # Most trade servers run self-signed certificates; pin a CA bundle here in production.
    tls_verify: bool | str = False
    timeout_seconds: float = 15.0
    # Manager sessions kept open to this server (each carries one request at a time).
    connections: int = Field(default=2, ge=1, le=16)
    # Client-side ceiling, kept under the server's own limit (MT5 answers "12 Too frequent").
    max_requests_per_second: float = Field(default=100.0, gt=0)
    # BrokerFlow allocates MT5 logins itself from this range (see docs/architecture.md).
    login_range_start: int = 5_000_000
    login_range_end: int = 5_999_999
    # This server's clock minus UTC, in seconds (UTC+2: 7200). Unset: the single
    # `ib.server_clock_offset` every server shared before (`Settings.server_clock_offset_of`).
    server_clock_offset: int | None = Field(default=None, ge=-14 * 3600, le=14 * 3600)

    def is_sealed(self) -> bool:
        return self.manager_password.get_secret_value().startswith(SEALED_PREFIX)

    def opened(self, master_key: SecretStr) -> Mt5ServerSettings:
        """A copy holding the manager password in clear (in memory only, for the gateway)."""
        if not self.is_sealed():
            return self
        password = open_secret(self.manager_password.get_secret_value(), master_key)
        return self.model_copy(update={"manager_password": password})


class PspSettings(BaseModel):
    """The payment processors: one base URL here (each provider has its own path prefix, as the
    simulator serves them), and each provider's API key and webhook secret, sealed in prod."""

    base_url: str = "http://127.0.0.1:8600"
    cardco_api_key: SecretStr = SecretStr("sk_card_dev")
    cardco_webhook_secret: SecretStr = SecretStr("whsec_card_dev")
    bankco_api_key: SecretStr = SecretStr("sk_bank_dev")
    bankco_webhook_secret: SecretStr = SecretStr("whsec_bank_dev")
    timeout_seconds: float = 15.0

    def secret_fields(self) -> tuple[str, ...]:
        return (
            "cardco_api_key",
            "cardco_webhook_secret",
            "bankco_api_key",
            "bankco_webhook_secret",
        )

    def opened(self, master_key: SecretStr) -> PspSettings:
        """A copy with every sealed secret opened (in memory only)."""
        update: dict[str, SecretStr] = {}
        for name in self.secret_fields():
            value = getattr(self, name).get_secret_value()
            if value.startswith(SEALED_PREFIX):
                update[name] = open_secret(value, master_key)
        return self.model_copy(update=update)


# The timers' defaults are the domain's (one place for them).
_TIMERS = PaymentTimers()


class PaymentRules(BaseModel):
    """Limits and thresholds of the deposit and withdrawal checks, in the amount's own currency.

    Deliberately one set of numbers for every currency: a broker with very different currencies
    (JPY next to USD) sets per-currency rules in a later version."""

    min_deposit: Decimal = Decimal("10")
    max_deposit: Decimal = Decimal("50000")
    # Deposits of one client over the last 24 hours, this one included.
    daily_deposit_limit: Decimal = Decimal("100000")
    # More deposits than this within an hour is velocity worth a compliance look.
    max_deposits_per_hour: int = 10
    min_withdrawal: Decimal = Decimal("10")
    max_withdrawal: Decimal = Decimal("100000")
    # Between a client's own wallet and MT5 accounts.
    min_transfer: Decimal = Decimal("1")
    max_transfer: Decimal = Decimal("1000000")
    # Withdrawals up to this are approved automatically; above it, two finance officers approve.
    auto_approve_withdrawal_up_to: Decimal = Decimal("1000")
    # How similar the payer's name must be to the client's (0-100) before a deposit is held.
    payer_name_min_score: int = Field(default=85, ge=0, le=100)
    # FX conversion spread charged on transfers between currencies, in basis points.
    fx_spread_bps: int = Field(default=50, ge=0, le=1000)
    # A conversion refuses a stored rate older than this (`FxRateStale`). One hour suits rates
    # finance enters by hand during the trading day; a live feed warrants minutes. Over a weekend
    # (FX closed) conversions are refused until someone enters a rate. Env: an ISO 8601
    # duration (`PT15M`).
    fx_rate_max_age: timedelta = Field(
        default=timedelta(hours=1), gt=timedelta(0), le=timedelta(days=7)
    )
    # Nothing waits without a timer (env: ISO 8601 durations, `PT30M`, `P1D`). A withdrawal
    # whose payout has no verdict asks the processor `payout_verdict_poll_after` after sending
    # it, then every `payout_verdict_poll_every`; still pending `payout_verdict_escalate_after`
    # after sending, a finance case (`payout_verdict_overdue`) is opened once and polling goes
    # on. A held deposit or a withdrawal awaiting four-eyes approval undecided after
    # `held_decision_sla` opens a `decision_overdue` case once and keeps waiting.
    payout_verdict_poll_after: timedelta = Field(default=_TIMERS.payout_poll_after, gt=timedelta(0))
    payout_verdict_poll_every: timedelta = Field(
        default=_TIMERS.payout_poll_every, ge=timedelta(minutes=1)
    )
    payout_verdict_escalate_after: timedelta = Field(
        default=_TIMERS.payout_escalate_after, gt=timedelta(0)
    )
    held_decision_sla: timedelta = Field(default=_TIMERS.held_decision_sla, gt=timedelta(0))
    # A deposit the processor has said nothing about asks it what it sent (a lost webhook)
    # `deposit_outcome_poll_after` in, then at doubling intervals up to
    # `deposit_outcome_poll_every`, and once more as its payment window closes.
    deposit_outcome_poll_after: timedelta = Field(
        default=_TIMERS.deposit_poll_after, gt=timedelta(0)
    )
    deposit_outcome_poll_every: timedelta = Field(
        default=_TIMERS.deposit_poll_every, ge=timedelta(minutes=1)
    )

    def timers(self) -> PaymentTimers:
        """The timers a deposit or a withdrawal carries in its workflow input (workflows cannot
        read settings: the API puts these in when it starts one)."""
        return PaymentTimers(
            payout_poll_after=self.payout_verdict_poll_after,
            payout_poll_every=self.payout_verdict_poll_every,
            payout_escalate_after=self.payout_verdict_escalate_after,
            held_decision_sla=self.held_decision_sla,
            deposit_poll_after=self.deposit_outcome_poll_after,
            deposit_poll_every=self.deposit_outcome_poll_every,
        )


class ThrottleLimit(BaseModel):
    """How many failures one account or one address may have before it waits, and before it is
    locked. After `free` failures each further one makes the next attempt wait a growing delay
    (`first_delay_seconds`, doubled each time, at most `max_delay_seconds`); the `lock_after`-th
    failure locks for `lock_minutes`, each later lock twice as long (at most `max_lock_hours`).
    Failures older than `window_minutes` are forgotten."""

    free: int = Field(ge=0)
    lock_after: int = Field(ge=1)
    window_minutes: float = Field(default=15, gt=0)
    lock_minutes: float = Field(default=15, gt=0)


class AuthThrottleRules(BaseModel):
    """Throttling of log-ins (client, IB, staff password and TOTP, console) and of
    verification-mail resends, per account and per source address; answered 429 + Retry-After."""

    login_account: ThrottleLimit = Field(
        default_factory=lambda: ThrottleLimit(free=3, lock_after=10)
    )
    # An office behind one address mistypes too: more room, but a lock all the same.
    login_address: ThrottleLimit = Field(
        default_factory=lambda: ThrottleLimit(free=20, lock_after=100)
    )
    resend_address: ThrottleLimit = Field(
        default_factory=lambda: ThrottleLimit(free=20, lock_after=40, window_minutes=60)
    )
    # Password-reset requests (each one counts, found or not) per email and per address, and
    # confirmations with a wrong, used or expired token per address.
    reset_account: ThrottleLimit = Field(
        default_factory=lambda: ThrottleLimit(free=3, lock_after=10, window_minutes=60)
    )
    reset_address: ThrottleLimit = Field(
        default_factory=lambda: ThrottleLimit(free=20, lock_after=40, window_minutes=60)
    )
    # How long a password-reset link stays good (it works once).
    reset_token_minutes: int = Field(default=30, ge=5, le=24 * 60)
    # Badly signed webhooks from one address: throttled, and stored aggregated.
    webhook_rejected_address: ThrottleLimit = Field(
        default_factory=lambda: ThrottleLimit(free=20, lock_after=60, window_minutes=10)
    )
    first_delay_seconds: float = Field(default=1, gt=0)
    max_delay_seconds: float = Field(default=60, gt=0)
    max_lock_hours: float = Field(default=24, gt=0)


class KycRules(BaseModel):
    """Service levels of KYC review and when re-KYC starts."""

    # An untouched case is escalated after this long; a client owing information is reminded
    # every `client_reminder_days`, `client_reminders` times.
    review_sla_hours: float = Field(default=24, gt=0)
    client_reminder_days: float = Field(default=3, gt=0)
    client_reminders: int = Field(default=3, ge=0, le=10)
    # Re-KYC opens this many days before an identity document or proof of address runs out.
    rekyc_notice_days: int = Field(default=30, ge=1, le=365)
    # How long an email-verification link stays good.
    email_link_hours: int = Field(default=48, ge=1, le=24 * 14)

    def sla(self) -> KycSla:
        """The service levels a case carries in its workflow input (workflows cannot read
        settings: whoever starts a case puts these in)."""
        return KycSla(
            review=timedelta(hours=self.review_sla_hours),
            client_reminder=timedelta(days=self.client_reminder_days),
            client_reminders=self.client_reminders,
        )


class IbRules(BaseModel):
    """IB payouts (docs/ib-payouts.md). Read by the payout cycle's schedules: a change reaches
    the next cycle when the worker restarts (it updates the schedules)."""

    # A payout above this, in its own currency, needs two different finance officers.
    four_eyes_above: Decimal = Field(default=Decimal("1000"), ge=0)
    # The trade server's clock minus UTC, in seconds (MT5 servers often run at UTC+2 or UTC+3:
    # 7200, 10800): periods and plan dates are on that clock, so a "day" is a broker day.
    server_clock_offset: int = Field(default=0, ge=-14 * 3600, le=14 * 3600)


class FxFeedSettings(BaseModel):
    """FX rates from an MT5 server's quotes (`tick/last`), stored beside finance's own
    (docs/payments.md, "FX rates"). Read by the `fx-feed` schedule: a change reaches it when
    the worker restarts (it updates the schedule)."""

    # Off: no schedule (an existing one is deleted at the worker's start); rates are staff's only.
    enabled: bool = True
    # Whose quotes: an MT5 server's name. Unset: the sign-up server (`mt5`).
    server: str | None = None
    # How often the quotes are read (env: ISO 8601 duration, `PT60S`).
    interval: timedelta = Field(
        default=timedelta(seconds=60), ge=timedelta(seconds=5), le=timedelta(hours=1)
    )
    # MT5 symbol -> the pair its quote is (units of the second currency per one of the first).
    # Env: JSON, `{"EURUSD": "EUR/USD", "EURUSD.r": "EUR/USD"}`.
    symbols: dict[str, str] = Field(
        default_factory=lambda: {
            "EURUSD": "EUR/USD",
            "GBPUSD": "GBP/USD",
            "USDJPY": "USD/JPY",
            "USDCHF": "USD/CHF",
            "AUDUSD": "AUD/USD",
            "USDCAD": "USD/CAD",
            "NZDUSD": "NZD/USD",
            "EURGBP": "EUR/GBP",
        }
    )

    @model_validator(mode="after")
    def _pairs_are_booked_currencies(self) -> FxFeedSettings:
        for symbol, pair in self.symbols.items():
            base, _, quote = pair.partition("/")
            if base not in MINOR_UNITS or quote not in MINOR_UNITS or base == quote:
                raise ValueError(
                    f"fx_feed.symbols: {symbol} -> {pair!r} is not a pair of two different "
                    "booked currencies (e.g. EUR/USD)"
                )
        return self

    def pairs(self) -> list[tuple[str, str, str]]:
        """(symbol, base, quote) of every configured symbol, in symbol order."""
        return [(s, p[:3], p[4:]) for s, p in sorted(self.symbols.items())]


class ReconciliationSettings(BaseModel):
    """The scheduled three-way reconciliation (docs/reconciliation.md, "The scheduled run"). Read
    by the per-server schedules: a change reaches them when the worker restarts."""

    # Off: no schedules are made (back-fills through the API still run).
    enabled: bool = True
    # The broker day's cut-off on each server's own clock (`server_clock_offset_of`), HH:MM.
    cut_off: time = time(0, 0)
    # The daily run starts this long after the cut-off, so late deals and reports are in.
    delay: timedelta = Field(default=timedelta(minutes=30), ge=timedelta(0), le=timedelta(hours=12))
    # Also reconcile the day so far every hour (breaks of a partial day are provisional).
    hourly: bool = False
    cut_off_window_seconds: int = Field(default=300, ge=0, le=86400)
    match_window_seconds: int = Field(default=3600, ge=0, le=86400)
    # A new break at or above this (in its own currency) alerts finance.
    alert_above: Decimal = Field(default=Decimal("100"), ge=0)
    # The currency of a balance deal whose login BrokerFlow does not know (a dealer's account).
    default_currency: str = "USD"
    # A payout waiting on its processor this long, in no settlement report, is a stuck break.
    stuck_after: timedelta = Field(
        default=timedelta(days=1), ge=timedelta(0), le=timedelta(days=30)
    )


class RiskSettings(BaseModel):
    """The live exposure (docs/risk-exposure.md, "Live view, alerts, dashboard"): each MT5
    server's `risk-exposure-<server>` schedule stores a point of the exposure series every
    `interval`; a change reaches the schedules when the worker restarts."""

    # Off: no schedules (existing ones are deleted at the worker's start).
    enabled: bool = True
    # Env: ISO 8601 duration (`PT10S`).
    interval: timedelta = Field(
        default=timedelta(seconds=10), ge=timedelta(seconds=1), le=timedelta(hours=1)
    )
    # The reporting currency of every notional and margin figure.
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    # Points older than this are deleted by the run that writes the next one.
    retention: timedelta = Field(
        default=timedelta(days=2), ge=timedelta(minutes=10), le=timedelta(days=90)
    )
    # Raised alerts are also POSTed here, signed (docs/risk-exposure.md, "Delivery"); unset:
    # mail and console only. No credential in the URL: httpx logs it; the signature is the proof.
    webhook_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", max_length=2000)
    # The HMAC-SHA256 key of the webhook's signature; required with webhook_url, never logged.
    webhook_secret: SecretStr | None = None
    # An account is "near a margin call" when its margin level is at or below its group's
    # MarginCall x (1 + this): 0.2 = within 20 % above the line (domain/exposure/margin_calls).
    margin_call_headroom: Decimal = Field(default=Decimal("0.2"), ge=0, le=10)

    @model_validator(mode="after")
    def _webhook_is_signed(self) -> RiskSettings:
        if self.webhook_url and len((self.webhook_secret or SecretStr("")).get_secret_value()) < 16:
            raise ValueError("risk.webhook_url needs risk.webhook_secret (16 characters or more)")
        return self

    def opened(self, master_key: SecretStr) -> RiskSettings:
        """A copy with the webhook secret opened if it was given sealed (in memory only)."""
        secret = self.webhook_secret
        if secret is None or not secret.get_secret_value().startswith(SEALED_PREFIX):
            return self
        return self.model_copy(
            update={"webhook_secret": open_secret(secret.get_secret_value(), master_key)}
        )


class ProfilingSettings(BaseModel):
    """Client profiling (docs/risk-profiling.md, "Stored profiles and the dealer's decision"):
    each MT5 server's `client-profiling-<server>` schedule profiles its accounts' deals of the
    last `window` every `interval`; a dealer's accepted book moves the account to `groups`."""

    # Off: no schedules (existing ones are deleted at the worker's start).
    enabled: bool = True
    # Env: ISO 8601 durations (`PT1H`, `P7D`).
    interval: timedelta = Field(
        default=timedelta(hours=1), ge=timedelta(minutes=1), le=timedelta(days=1)
    )
    window: timedelta = Field(
        default=timedelta(days=7), ge=timedelta(hours=1), le=timedelta(days=90)
    )
    # Quotes read per symbol and run at most (`tick/history` around the window's entries).
    max_ticks_per_symbol: int = Field(default=200_000, ge=1_000, le=5_000_000)
    # The MT5 group of each book (A, B, hybrid), and per server where it differs.
    groups: dict[str, str] = Field(
        default_factory=lambda: {
            "A": "real\\a-book",
            "B": "real\\b-book",
            "hybrid": "real\\hybrid",
        }
    )
    server_groups: dict[str, dict[str, str]] = Field(default_factory=dict)

    def group_for(self, server: str, book: str) -> str | None:
        return self.server_groups.get(server, {}).get(book) or self.groups.get(book)


class AnalyticsSettings(BaseModel):
    """The reporting aggregates (docs/reporting.md): the `analytics` schedule refreshes them
    from the deals every `interval`; a change reaches the schedule when the worker restarts."""

    # Off: no schedule (an existing one is deleted at the worker's start).
    enabled: bool = True
    # Env: ISO 8601 duration (`PT5M`).
    interval: timedelta = Field(
        default=timedelta(minutes=5), ge=timedelta(seconds=10), le=timedelta(days=1)
    )
    # The per-deal dealer-plugin revenue (docs/revenue.md), on its own schedule when enabled.
    revenue_interval: timedelta = Field(
        default=timedelta(minutes=1), ge=timedelta(seconds=10), le=timedelta(days=1)
    )


class MailSettings(BaseModel):
    """Outgoing mail. Dev and tests send to the local SMTP catcher (`simulators.smtp`)."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    sender: str = "BrokerFlow <no-reply@brokerflow.local>"
    starttls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    # Where links in emails point (the API's public address).
    public_base_url: str = "http://127.0.0.1:8000"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BROKERFLOW_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = PROJECT_ROOT / ".data"

    # Owner connection (migrations). Unset: an embedded PostgreSQL under data_dir is started.
    # It may carry a password: kept out of repr, and masked when the settings are dumped.
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("BROKERFLOW_DATABASE_URL", "DATABASE_URL"),
        repr=False,
    )
    # The app's own role, which may not UPDATE or DELETE the audit log.
    database_app_role: str = "brokerflow_app"
    database_app_password: SecretStr | None = None

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Proxies whose X-Forwarded-For is believed when deciding a caller's IP (CIDRs).
    trusted_proxies: list[str] = Field(default_factory=list)

    jwt_secret: SecretStr = SecretStr(DEV_ONLY["jwt_secret"])
    access_token_minutes: int = 15
    # Each log-in is a server-side session: a refresh token (rotated on every use) keeps it
    # going this long; logging out or a change of roles ends it at once.
    refresh_token_days: float = Field(default=7, gt=0, le=90)
    # Failed log-ins and mail resends: growing delays, then a temporary lock.
    auth_throttle: AuthThrottleRules = Field(default_factory=AuthThrottleRules)
    # Fernet key (urlsafe base64, 32 bytes) for secrets BrokerFlow must keep, e.g. one-time MT5
    # credentials waiting for their client.
    secrets_key: SecretStr = SecretStr(DEV_ONLY["secrets_key"])

    # The server new sign-ups get their demo account on.
    mt5: Mt5ServerSettings = Field(default_factory=Mt5ServerSettings)
    # Every other MT5 server (e.g. live-1, live-2), each with its own credentials and task queue.
    mt5_servers: list[Mt5ServerSettings] = Field(default_factory=list)

    # Payment processors (CardCo, BankCo) and the rules deposits and withdrawals are checked by.
    psp: PspSettings = Field(default_factory=PspSettings)
    payments: PaymentRules = Field(default_factory=PaymentRules)
    # IB payouts: the four-eyes threshold and the trade server's clock offset.
    ib: IbRules = Field(default_factory=IbRules)
    # FX rates read from an MT5 server's quotes on a schedule, beside the ones finance enters.
    fx_feed: FxFeedSettings = Field(default_factory=FxFeedSettings)
    # The live exposure series per MT5 server (issue 15).
    risk: RiskSettings = Field(default_factory=RiskSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    # Client profiles per MT5 server and the MT5 group of each book (issue 15).
    profiling: ProfilingSettings = Field(default_factory=ProfilingSettings)
    # The daily (optionally hourly) three-way reconciliation per MT5 server.
    reconciliation: ReconciliationSettings = Field(default_factory=ReconciliationSettings)

    # KYC review service levels, outgoing mail, and the encrypted store of client documents
    # (AES-256-GCM; the key is 32 bytes, urlsafe base64; `documents_dir` defaults under data_dir).
    kyc: KycRules = Field(default_factory=KycRules)
    mail: MailSettings = Field(default_factory=MailSettings)
    documents_dir: Path | None = None
    documents_key: SecretStr = SecretStr(DEV_ONLY["documents_key"])

    otel_exporter: Literal["none", "console", "otlp"] = "none"
    otel_endpoint: str = "http://127.0.0.1:4318"
    # host:port where the worker serves Temporal's SDK metrics for Prometheus (activity
    # attempts, failures, schedule-to-start latency, workflow task failures). Unset: not served
    # (each worker process needs a port of its own).
    worker_metrics_address: str | None = None
    # Bearer token Prometheus sends to the API's /metrics. Loopback callers need none; from any
    # other address /metrics answers 401 without it (403 while it is unset).
    metrics_token: SecretStr | None = None
    log_level: str = "INFO"
    log_json: bool = True

    @field_serializer("database_url")
    def _mask_database_password(self, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":**********@", 1)
        return urlunsplit(parts._replace(netloc=netloc))

    def documents_path(self) -> Path:
        return self.documents_dir or self.data_dir / "documents"

    def mt5_fleet(self) -> list[Mt5ServerSettings]:
        """Every MT5 server BrokerFlow drives, the sign-up server first."""
        return [self.mt5, *self.mt5_servers]

    def server_clock_offset_of(self, server: str) -> int:
        """`server`'s clock minus UTC in seconds: its own setting, else (and for a server not
        configured) the shared `ib.server_clock_offset`."""
        for configured in self.mt5_fleet():
            if configured.name == server and configured.server_clock_offset is not None:
                return configured.server_clock_offset
        return self.ib.server_clock_offset

    @model_validator(mode="after")
    def _server_names_are_unique(self) -> Settings:
        names = [server.name for server in self.mt5_fleet()]
        if len(names) != len(set(names)):
            raise ValueError(f"MT5 server names must be unique, got {names}")
        return self

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        """Prod refuses dev secrets and unsealed manager passwords; sealed ones must open."""
        if self.env == "prod":
            for name in ("jwt_secret", "secrets_key", "documents_key"):
                if getattr(self, name).get_secret_value() == DEV_ONLY[name]:
                    raise ValueError(f"BROKERFLOW_{name.upper()} must be set in prod")
        for name in self.psp.secret_fields():
            value = getattr(self.psp, name).get_secret_value()
            if value.startswith(SEALED_PREFIX):
                open_secret(value, self.secrets_key)
            elif self.env == "prod":
                raise ValueError(f"BROKERFLOW_PSP__{name.upper()} must be given sealed in prod")
        webhook_secret = self.risk.webhook_secret
        if webhook_secret is not None:
            if webhook_secret.get_secret_value().startswith(SEALED_PREFIX):
                open_secret(webhook_secret.get_secret_value(), self.secrets_key)
            elif self.env == "prod":
                raise ValueError("BROKERFLOW_RISK__WEBHOOK_SECRET must be given sealed in prod")
        for server in self.mt5_fleet():
            if server.is_sealed():
                server.opened(self.secrets_key)
            elif self.env == "prod":
                raise ValueError(f"MT5 server {server.name}: give the manager password sealed")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
