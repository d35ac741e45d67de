"""Client wallets on the ledger: deposits, holds for pending withdrawals, FX conversion.

A wallet is the liability account `wallet:<client>:<ccy>`: what the broker owes the client, a
credit balance. A hold moves money from the wallet to `hold:<client>:<ccy>`, so the wallet shows
what is available and the hold what is reserved; releasing moves it back, capturing pays it out.
Every operation is a journal entry: nothing moves outside the books.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.errors import Conflict, InvalidInput
from domain.ledger import AccountKind, JournalEntry, Posting, account_code
from domain.money import MINOR_UNITS, Money

BASIS_POINT = Decimal("0.0001")


class InsufficientFunds(Conflict):
    title = "Insufficient funds"


class FxRateStale(Conflict):
    """The newest stored rate is older than a conversion may use (or stamped in the future)."""

    title = "FX rate too old"


def wallet(client: str, currency: str) -> str:
    return account_code(AccountKind.CLIENT_WALLET, client, currency)


def hold_account(client: str, currency: str) -> str:
    return account_code(AccountKind.HOLD, client, currency)


def available(ledger_balance: Money) -> Money:
    """A wallet's ledger balance is a credit (negative); the client sees it positive."""
    return Money(amount=-ledger_balance.amount, currency=ledger_balance.currency)


def entry(key: str, description: str, *legs: tuple[str, Money]) -> JournalEntry:
    return JournalEntry(
        idempotency_key=key,
        description=description,
        postings=tuple(Posting(account=account, amount=amount) for account, amount in legs),
    )


def negated(money: Money) -> Money:
    return Money(amount=-money.amount, currency=money.currency)


def require_positive(amount: Money) -> None:
    if amount.amount <= 0 or not amount.is_exact():
        raise InvalidInput(
            f"{amount.amount} {amount.currency} is not a positive amount in whole minor units"
        )


def credit_deposit(key: str, client: str, provider: str, amount: Money) -> JournalEntry:
    """Money a processor collected for a client: PSP clearing (asset) up, wallet (liability) up."""
    require_positive(amount)
    clearing = account_code(AccountKind.PSP_CLEARING, provider, amount.currency)
    return entry(
        key,
        f"deposit via {provider}",
        (clearing, amount),
        (wallet(client, amount.currency), negated(amount)),
    )


def place_hold(key: str, client: str, amount: Money, wallet_available: Money) -> JournalEntry:
    """Reserve `amount` for a withdrawal; refused beyond what the wallet holds."""
    require_positive(amount)
    if wallet_available.currency != amount.currency:
        raise InvalidInput("the hold and the wallet are in different currencies")
    if amount.amount > wallet_available.amount:
        raise InsufficientFunds(
            f"{amount.amount} {amount.currency} requested, {wallet_available.amount} available"
        )
    return entry(
        key,
        "hold for withdrawal",
        (wallet(client, amount.currency), amount),
        (hold_account(client, amount.currency), negated(amount)),
    )


def release_hold(key: str, client: str, amount: Money) -> JournalEntry:
    """The withdrawal did not happen: the reserved money is available again."""
    require_positive(amount)
    return entry(
        key,
        "hold released",
        (hold_account(client, amount.currency), amount),
        (wallet(client, amount.currency), negated(amount)),
    )


def capture_hold(
    key: str, client: str, provider: str, amount: Money, fee: Money | None = None
) -> JournalEntry:
    """The payout left: the hold is used up, the processor's clearing balance pays it (and its
    fee, which is the broker's expense)."""
    require_positive(amount)
    clearing = account_code(AccountKind.PSP_CLEARING, provider, amount.currency)
    legs: list[tuple[str, Money]] = [(hold_account(client, amount.currency), amount)]
    if fee is not None and fee.amount:
        require_positive(fee)
        legs.append((account_code(AccountKind.FEES, provider, fee.currency), fee))
        legs.append(
            (clearing, negated(Money(amount=amount.amount + fee.amount, currency=amount.currency)))
        )
    else:
        legs.append((clearing, negated(amount)))
    return entry(key, f"payout via {provider}", *legs)


class FxRate(BaseModel):
    """A stored, time-stamped quote: units of `quote` per one `base`."""

    model_config = ConfigDict(frozen=True)

    base: str
    quote: str
    bid: Decimal = Field(gt=0)
    ask: Decimal = Field(gt=0)
    as_of: datetime

    @model_validator(mode="after")
    def _ordered(self) -> FxRate:
        if self.ask < self.bid:
            raise ValueError("ask below bid")
        return self

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


# A feed's clock and ours may disagree a little; a rate stamped further ahead than this is refused.
FX_CLOCK_SKEW = timedelta(minutes=1)


def require_fresh(rate: FxRate, now: datetime, max_age: timedelta) -> None:
    """Refuse to convert at `rate` when, at `now`, it is older than `max_age`: the market has
    moved since, and the client or the broker would pay for it. A rate stamped in the future
    (beyond a small clock skew) is refused too: its time cannot be trusted."""
    if now.tzinfo is None or rate.as_of.tzinfo is None:
        raise InvalidInput("an FX rate's age needs time-zone-aware times")
    if max_age <= timedelta(0):
        raise InvalidInput("the maximum FX rate age must be positive")
    age = now - rate.as_of
    pair = f"{rate.base}/{rate.quote}"
    stamp = f"{rate.as_of.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    if age > max_age:
        raise FxRateStale(
            f"the newest {pair} rate ({stamp}) is {_duration(age)} old; conversions use rates "
            f"up to {_duration(max_age)} old: a newer rate is needed"
        )
    if -age > FX_CLOCK_SKEW:
        raise FxRateStale(f"the newest {pair} rate is stamped {stamp}, {_duration(-age)} ahead")


def _duration(span: timedelta) -> str:
    """`2 d 3 h 5 min`, `1 h`, `45 s`: whole units, for people."""
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if n]
    return " ".join(parts)


def convert(
    key: str,
    client: str,
    sell: Money,
    into: str,
    rate: FxRate,
    spread_bps: int,
    pocket: Callable[[str, str], str] = wallet,
) -> tuple[JournalEntry, Money]:
    """Convert part of a client's wallet into another currency at the stored rate less a spread.

    `pocket` names the client's account in each currency: the wallet, or the hold account for
    money in transit between the client's accounts.

    The client receives `sell * mid * (1 - spread)`, rounded down to the minor unit; the broker's
    FX account takes the position at mid, and the spread is booked as revenue. Returns the entry
    and what the client receives.
    """
    require_positive(sell)
    if {rate.base, rate.quote} != {sell.currency, into}:
        raise InvalidInput(
            f"the rate {rate.base}/{rate.quote} does not convert {sell.currency} to {into}"
        )
    mid = rate.mid if rate.base == sell.currency else 1 / rate.mid
    at_mid = _minor(sell.amount * mid, into)
    received = _minor(sell.amount * mid * (1 - spread_bps * BASIS_POINT), into)
    if received.amount <= 0:
        raise InvalidInput("the amount is too small to convert")
    legs: list[tuple[str, Money]] = [
        (pocket(client, sell.currency), sell),
        (account_code(AccountKind.FX_RESULT, "position", sell.currency), negated(sell)),
        (account_code(AccountKind.FX_RESULT, "position", into), at_mid),
        (pocket(client, into), negated(received)),
    ]
    spread = Money(amount=at_mid.amount - received.amount, currency=into)
    if spread.amount:
        legs.append((account_code(AccountKind.REVENUE, "fx-spread", into), negated(spread)))
    stamp = f"{rate.as_of:%Y-%m-%dT%H:%M:%SZ}"
    description = f"convert {sell.amount} {sell.currency} to {into} at {mid:.8f} (rate of {stamp})"
    return entry(key, description, *legs), received


def _minor(amount: Decimal, currency: str) -> Money:
    exponent = Decimal(1).scaleb(-MINOR_UNITS[currency])
    return Money(amount=amount.quantize(exponent, ROUND_DOWN), currency=currency)
