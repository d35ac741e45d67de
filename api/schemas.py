"""Field types shared by request and response schemas, and the conversions money needs."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import combinations
from typing import Annotated

import email_validator
import phonenumbers
from fastapi import Query
from phonenumbers import PhoneNumberType
from pydantic import (
    AfterValidator,
    BeforeValidator,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from domain.countries import ISO_COUNTRIES, is_iso_country
from domain.errors import InvalidInput
from domain.money import MINOR_UNITS, Money
from domain.onboarding import PASSWORD_KINDS


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


# An address whose domain is a special-use name (RFC 6761: `.test`, `.local`, ...) can receive
# no mail, and email-validator (the check) refuses it while `format: email` admits it: the
# document says so with a pattern made from email-validator's own list, so both agree.
_SPECIAL_USE = "|".join(_any_case(d) for d in email_validator.SPECIAL_USE_DOMAIN_NAMES)
EMAIL_DELIVERABLE_PATTERN = f"^(?![\\s\\S]*[@.](?:{_SPECIAL_USE})$)[\\s\\S]*$"
Email = Annotated[
    EmailStr,
    StringConstraints(max_length=254),
    WithJsonSchema(
        {
            "type": "string",
            "format": "email",
            "maxLength": 254,
            "pattern": EMAIL_DELIVERABLE_PATTERN,
        }
    ),
]
# A password being checked (log-in): any the user may once have chosen.
Password = Annotated[str, Field(min_length=1, max_length=128)]
# What pydantic's `strip_whitespace` removes (Unicode White_Space; Python's `isspace` also
# counts U+001C-U+001F, pydantic does not), as a regex class body. Patterns name these spaces
# one by one, never as `\s`: a client's JSON Schema validator (ECMA-262: U+FEFF is a space,
# U+0085 is not) and the server's regex engine (Unicode: the other way round) disagree on it.
SPACES = "".join(
    f"\\u{code:04x}"
    for code in range(0x10000)
    if chr(code).isspace() and code not in range(0x1C, 0x20)
)


# A regex class body: the one character no text column can hold.
NUL = r"\x00"


@dataclass(frozen=True)
class Stripped:
    """Text the server strips of surrounding spaces, as `Annotated[str, Stripped(...)]`.

    The document's `maxLength` counts the text as sent, so the server checks that length before
    stripping; `min_length` counts what is left, which the document says with a pattern (a bare
    `minLength` would admit "  ", which strips to nothing). `refused` is a regex class body of
    characters the stripped text may not hold: NUL at least, which PostgreSQL cannot store.
    """

    min_length: int
    max_length: int
    refused: str = NUL

    def __get_pydantic_core_schema__(
        self, source: object, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.chain_schema(
            [
                core_schema.str_schema(max_length=self.max_length),
                core_schema.str_schema(
                    strip_whitespace=True,
                    min_length=self.min_length,
                    pattern=f"^[^{self.refused}]*$",
                ),
            ]
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        any_ = f"[^{self.refused}]"
        text = f"[^{self.refused}{SPACES}]"
        if self.min_length <= 1:
            core = f"{text}(?:{any_}*{text})?"
        else:
            core = f"{text}{any_}{{{self.min_length - 2},}}{text}"
        if self.min_length == 0:
            core = f"(?:{core})?"
        return {
            "type": "string",
            "minLength": self.min_length,
            "maxLength": self.max_length,
            "pattern": f"^[{SPACES}]*{core}[{SPACES}]*$",
        }


PersonName = Annotated[str, Stripped(1, 200)]


def _iso_country(value: str) -> str:
    if not is_iso_country(value):
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code, e.g. DE")
    return value


# ISO 3166-1 alpha-2, listed in the document (an enum) as the server checks it.
CountryCode = Annotated[
    str,
    AfterValidator(_iso_country),
    WithJsonSchema({"type": "string", "enum": sorted(ISO_COUNTRIES)}),
]
TotpCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
# A bigint column holds values below 2**63. Bounds say so with `lt`: 2**63 - 1 is not exact in
# a JSON number (a double reads it as 2**63, which a client then sends as valid).
BIGINT_END = 2**63
Mt5Login = Annotated[int, Field(gt=0, lt=BIGINT_END)]

# A password being chosen: 12 to 128 characters, of at least three of four kinds: lower case
# (a-z), upper case (A-Z), digit (0-9), other (anything else, letters beyond A-Z too). One
# pattern is both the documented rule and the check, so the two cannot disagree.
# The kinds are the domain's (domain/onboarding.py), the services' check counts them alike.
NEW_PASSWORD_PATTERN = (
    "^(?:"
    + "|".join(
        "".join(f"(?=[\\s\\S]*{kind})" for kind in kinds)
        for kinds in combinations(PASSWORD_KINDS, 3)
    )
    + ")"
)


def _new_password(value: str) -> str:
    if not re.match(NEW_PASSWORD_PATTERN, value):
        raise ValueError(
            "password needs three of: lower case (a-z), upper case (A-Z), digit, other character"
        )
    return value


NewPassword = Annotated[
    str,
    StringConstraints(min_length=12, max_length=128),
    AfterValidator(_new_password),
    WithJsonSchema(
        {"type": "string", "minLength": 12, "maxLength": 128, "pattern": NEW_PASSWORD_PATTERN}
    ),
]

# -- contact and address data ---------------------------------------------------------------------

# Text a person types on one line: no control characters (no line breaks, no NUL, no escapes).
_CONTROL = r"\x00-\x1f\x7f-\x9f"
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
AddressLine = Annotated[str, Stripped(1, 200, refused=_CONTROL)]
City = Annotated[str, Stripped(1, 100, refused=_CONTROL)]


def _postal_code(value: str) -> str:
    """Upper case, single spaces: `sw1a  1aa` -> `SW1A 1AA`."""
    return " ".join(value.upper().split())


# Letters, digits, spaces and hyphens, 2-12 of them, at least one digit or letter at each end:
# every national format fits (DE 10115, GB SW1A 1AA, CA K1A 0B1, NL 1012 AB, PT 1000-001).
PostalCode = Annotated[
    str,
    Stripped(2, 12),
    AfterValidator(_postal_code),
    StringConstraints(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9 -]{0,10}[A-Za-z0-9])?$"),
]

# Amounts travel as decimal strings ("100.00"), never as JSON numbers: a float has already lost
# the cents. The sign is allowed through so a negative amount is refused with its own reason.
AMOUNT_PATTERN = r"^[+-]?[0-9]{1,15}(\.[0-9]{1,18})?$"
# A rate is above zero: at least one digit that is not 0.
RATE_PATTERN = r"^(?=[0-9.]*[1-9])[0-9]{1,10}(\.[0-9]{1,10})?$"


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


def _booked_currency(value: str) -> str:
    if value not in MINOR_UNITS:
        raise ValueError(
            f"currency {value} is not supported; use one of {', '.join(sorted(MINOR_UNITS))}"
        )
    return value


# An ISO 4217 code of a currency BrokerFlow books: the document lists them (an enum), so a
# client learns the choice from it rather than from a refusal.
CurrencyCode = Annotated[
    str,
    AfterValidator(_booked_currency),
    WithJsonSchema({"type": "string", "enum": sorted(MINOR_UNITS)}),
]
Reason = Annotated[str, Stripped(3, 1000)]
# A note staff write on a decision.
Note = Annotated[str, Stripped(1, 500)]
# An instant as RFC 3339 says (what the document's `format: date-time` means): date, time and
# an offset. Without the check pydantic would also take a bare number (seconds since 1970) or a
# time of no zone, neither of which the document admits.
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _rfc3339(value: object) -> object:
    if isinstance(value, str) and not re.fullmatch(RFC3339_PATTERN, value):
        raise ValueError("give an RFC 3339 date-time with its offset, e.g. 2026-01-31T09:30:00Z")
    if isinstance(value, int | float):
        raise ValueError("give an RFC 3339 date-time, not a number")
    return value


Instant = Annotated[
    datetime,
    BeforeValidator(_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
# Keyset paging: the rows older than this id (a bigint).
BeforeId = Annotated[int | None, Query(ge=1, lt=BIGINT_END)]


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
