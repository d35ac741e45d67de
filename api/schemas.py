"""Field types shared by request and response schemas, and the conversions money needs."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated

import phonenumbers
from fastapi import Query
from phonenumbers import PhoneNumberType
from pydantic import (
    AfterValidator,
    BeforeValidator,
    EmailStr,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from domain.errors import InvalidInput
from domain.money import MINOR_UNITS, Money

Email = Annotated[EmailStr, StringConstraints(max_length=254)]
Password = Annotated[str, Field(min_length=1, max_length=128)]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
TotpCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
Mt5Login = Annotated[int, Field(gt=0, lt=2**63)]

# -- contact and address data ---------------------------------------------------------------------

# Text a person types on one line: no control characters (no line breaks, no NUL, no escapes).
_ONE_LINE = r"^[^\x00-\x1f\x7f-\x9f]+$"
_PHONE_SEPARATORS = re.compile(r"[\s().\-]")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# Numbers a person can be reached on; toll-free, premium-rate, shared-cost and the like are not.
_PERSONAL_NUMBER_TYPES = frozenset(
    {
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.PERSONAL_NUMBER,
        PhoneNumberType.VOIP,
    }
)


def e164(value: object) -> str:
    """A phone number in international form (`+4915123456789`), valid for the country its
    calling code names and one a person answers; spaces, dots, dashes and brackets are dropped."""
    if not isinstance(value, str) or len(value) > 32:
        raise ValueError("give the phone number in international form, e.g. +4915123456789")
    compact = _PHONE_SEPARATORS.sub("", value)
    if not _E164.fullmatch(compact):
        raise ValueError(
            "give the phone number in international form: + and the country calling code, "
            "e.g. +4915123456789"
        )
    try:
        number = phonenumbers.parse(compact, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        region = phonenumbers.region_code_for_country_code(number.country_code or 0)
        where = f"in {region}" if region and region != "ZZ" else "anywhere"
        raise ValueError(f"{compact} is not a valid phone number {where}")
    if phonenumbers.number_type(number) not in _PERSONAL_NUMBER_TYPES:
        raise ValueError(
            f"{compact} is a toll-free, premium-rate or shared number; give your own phone"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


Phone = Annotated[
    str,
    BeforeValidator(e164),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _E164.pattern,
            "examples": ["+4915123456789"],
            "description": "E.164: + and the country calling code, valid for that country",
        }
    ),
]
AddressLine = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=_ONE_LINE)
]
City = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=_ONE_LINE)
]


def _postal_code(value: str) -> str:
    """Upper case, single spaces: `sw1a  1aa` -> `SW1A 1AA`."""
    return " ".join(value.upper().split())


# Letters, digits, spaces and hyphens, 2-12 of them, at least one digit or letter at each end:
# every national format fits (DE 10115, GB SW1A 1AA, CA K1A 0B1, NL 1012 AB, PT 1000-001).
PostalCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=2, max_length=12),
    AfterValidator(_postal_code),
    StringConstraints(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9 -]{0,10}[A-Za-z0-9])?$"),
]

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
