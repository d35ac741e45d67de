"""Rules for opening an account: who may sign up, and what demo account each account type gets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from domain.countries import is_iso_country
from domain.errors import InvalidInput

# Age of majority where it is not 18 (contracts with a minor are voidable there).
_AGE_OF_MAJORITY: dict[str, int] = {
    "KR": 19,
    "TH": 20,
    "TW": 20,
    "NZ": 20,
    "AE": 21,
    "BH": 21,
    "SG": 21,
}
DEFAULT_AGE_OF_MAJORITY = 18
OLDEST_PLAUSIBLE_AGE = 120


class AccountType(StrEnum):
    STANDARD = "standard"
    PRO = "pro"


class ApplicationStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class DemoAccountTerms:
    group: str
    leverage: int
    currency: str


_DEMO_TERMS: dict[AccountType, DemoAccountTerms] = {
    AccountType.STANDARD: DemoAccountTerms(group="demo\\standard", leverage=100, currency="USD"),
    AccountType.PRO: DemoAccountTerms(group="demo\\pro", leverage=500, currency="USD"),
}


def demo_terms(account_type: AccountType) -> DemoAccountTerms:
    return _DEMO_TERMS[account_type]


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def age_of_majority(country: str) -> int:
    return _AGE_OF_MAJORITY.get(country, DEFAULT_AGE_OF_MAJORITY)


def check_applicant(country: str, birth: date, today: date) -> None:
    """Refuse an applicant from an unknown country or under the age of majority there."""
    if not is_iso_country(country):
        raise InvalidInput(
            f"country {country!r} is not an ISO 3166-1 alpha-2 code", field="country"
        )
    age = age_on(birth, today)
    if birth > today or age > OLDEST_PLAUSIBLE_AGE:
        raise InvalidInput("date_of_birth is not a plausible date of birth", field="date_of_birth")
    minimum = age_of_majority(country)
    if age < minimum:
        raise InvalidInput(
            f"applicants from {country} must be at least {minimum} years old", field="date_of_birth"
        )


def mt5_comment_for(application_ref: str) -> str:
    """The marker written on the MT5 user so a retried `user/add` recognises its own account."""
    return f"bf:{application_ref}"[:31]


# The kinds of character a chosen password mixes, as regex classes: lower case (a-z), upper case
# (A-Z), digit (0-9), other (anything else, letters beyond A-Z such as é too). The API's schema
# (api/schemas.py `NewPassword`) builds its documented pattern from these, so both count alike.
PASSWORD_KINDS = ("[a-z]", "[A-Z]", "[0-9]", "[^A-Za-z0-9]")
PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 128
_PASSWORD_KIND_PATTERNS = tuple(re.compile(kind) for kind in PASSWORD_KINDS)


def check_password_strength(password: str) -> None:
    """Client, IB and staff passwords: long enough and of three of the four kinds."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidInput("password must be at least 12 characters", field="password")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise InvalidInput("password must be at most 128 characters", field="password")
    classes = sum(1 for kind in _PASSWORD_KIND_PATTERNS if kind.search(password))
    if classes < 3:
        raise InvalidInput(
            "password needs three of: lower case (a-z), upper case (A-Z), digit, other character",
            field="password",
        )
