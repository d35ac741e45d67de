"""Money: a Decimal amount that always carries its currency, never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from pydantic import BaseModel, ConfigDict, field_validator

# ISO 4217 minor units for the currencies BrokerFlow books; anything else is refused.
MINOR_UNITS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CHF": 2,
    "JPY": 0,
    "AUD": 2,
    "CAD": 2,
    "NZD": 2,
    "SGD": 2,
    "HKD": 2,
    "PLN": 2,
    "CZK": 2,
    "SEK": 2,
    "NOK": 2,
    "ZAR": 2,
    "AED": 2,
}


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
