"""Money: a Decimal amount that always carries its currency, never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from iso4217 import Currency
from pydantic import BaseModel, ConfigDict, field_validator

# The currencies BrokerFlow books (the broker's choice); anything else is refused.
BOOKED_CURRENCIES: tuple[str, ...] = (
    "USD",
    "EUR",
    "GBP",
    "CHF",
    "JPY",
    "AUD",
    "CAD",
    "NZD",
    "SGD",
    "HKD",
    "PLN",
    "CZK",
    "SEK",
    "NOK",
    "ZAR",
    "AED",
)


def _iso4217_minor_units(code: str) -> int:
    """The ISO 4217 minor unit (decimals) of `code`, from the iso4217 package's copy of the
    ISO table. Raises ValueError for a code that is not in the table or that has no minor unit
    (the X currencies: gold, SDR, test codes)."""
    exponent = Currency(code).exponent
    if exponent is None:
        raise ValueError(f"ISO 4217 gives {code!r} no minor unit")
    return exponent


# Booked currency -> ISO 4217 minor units, computed once at import.
MINOR_UNITS: dict[str, int] = {code: _iso4217_minor_units(code) for code in BOOKED_CURRENCIES}


class Money(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: Decimal
    currency: str

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in MINOR_UNITS:
            raise ValueError(f"unsupported currency {value!r}")
        return value

    @field_validator("amount")
    @classmethod
    def _finite(cls, value: Decimal) -> Decimal:
        if not value.is_finite():
            raise ValueError("amount must be a finite number")
        return value

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        """`Money.of("10.50", "EUR")`: from a decimal string, never from a float."""
        return cls(amount=Decimal(amount), currency=currency)

    @property
    def exponent(self) -> Decimal:
        return Decimal(1).scaleb(-MINOR_UNITS[self.currency])

    def is_exact(self) -> bool:
        """True when the amount has no more decimals than the currency's minor unit."""
        return self.amount == self.amount.quantize(self.exponent)

    def rounded(self) -> Money:
        return Money(
            amount=self.amount.quantize(self.exponent, ROUND_HALF_EVEN), currency=self.currency
        )

    def to_minor_units(self) -> int:
        if not self.is_exact():
            raise ValueError(
                f"{self.amount} {self.currency} has more decimals than the currency allows"
            )
        return int(self.amount.scaleb(MINOR_UNITS[self.currency]))

    @classmethod
    def from_minor_units(cls, units: int, currency: str) -> Money:
        return cls(amount=Decimal(units).scaleb(-MINOR_UNITS[currency]), currency=currency)
