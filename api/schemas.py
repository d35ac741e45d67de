"""Field types shared by request and response schemas, and the conversions money needs."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated

from fastapi import Query
from pydantic import BeforeValidator, EmailStr, Field, StringConstraints, WithJsonSchema

from domain.errors import InvalidInput
from domain.money import MINOR_UNITS, Money

Email = Annotated[EmailStr, StringConstraints(max_length=254)]
Password = Annotated[str, Field(min_length=1, max_length=128)]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
TotpCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
Mt5Login = Annotated[int, Field(gt=0, lt=2**63)]

# Amounts travel as decimal strings ("100.00"), never as JSON numbers: a float has already lost
# the cents. The sign is allowed through so a negative amount is refused with its own reason.
AMOUNT_PATTERN = r"^[+-]?[0-9]{1,15}(\.[0-9]{1,18})?$"
RATE_PATTERN = r"^[0-9]{1,10}(\.[0-9]{1,10})?$"


def _decimal_text(pattern: str, example: str) -> Callable[[object], Decimal]:
    def parse(value: object) -> Decimal:
        if isinstance(value, Decimal):
            return value
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise ValueError(f'give it as a decimal string such as "{example}"')
        return Decimal(value)

    return parse


Amount = Annotated[
    Decimal,
    BeforeValidator(_decimal_text(AMOUNT_PATTERN, "100.00")),
    WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN, "examples": ["100.00"]}),
]
Rate = Annotated[
    Decimal,
    BeforeValidator(_decimal_text(RATE_PATTERN, "1.0842")),
    WithJsonSchema({"type": "string", "pattern": RATE_PATTERN, "examples": ["1.0842"]}),
]
# Well-formed ISO 4217 codes; whether BrokerFlow books the currency is checked with a reason.
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=1000)]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def decimal_text(minor_units: int, currency: str) -> str:
    """Integer minor units as the decimal string the API shows ("12.50")."""
    return format(Money.from_minor_units(minor_units, currency).amount, "f")


def require_supported(currency: str, field: str = "currency") -> None:
    """Refuse, with the list to choose from, a currency BrokerFlow does not book."""
    if currency not in MINOR_UNITS:
        raise InvalidInput(
            f"currency {currency} is not supported; use one of {', '.join(sorted(MINOR_UNITS))}",
            field=field,
        )


def supported_money(amount: Decimal, currency: str) -> Money:
    """`amount` in `currency`, refused with a reason when BrokerFlow does not book the currency."""
    require_supported(currency)
    return Money(amount=amount, currency=currency)
