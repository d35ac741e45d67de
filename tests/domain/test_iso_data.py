"""ISO 3166-1 codes and ISO 4217 minor units come from maintained packages, not from hand."""

from __future__ import annotations

import iso4217
import pycountry
import pytest

from domain.countries import ISO_COUNTRIES, Region, is_iso_country, region_of
from domain.money import BOOKED_CURRENCIES, MINOR_UNITS, Money


def test_every_iso_code_pycountry_knows_is_accepted() -> None:
    codes = {country.alpha_2 for country in pycountry.countries}
    assert codes == ISO_COUNTRIES
    assert len(ISO_COUNTRIES) == 249
    for code in codes:
        assert is_iso_country(code)
        assert isinstance(region_of(code), Region)


@pytest.mark.parametrize("code", ["XK", "EU", "UK", "SU", "YU", "gb", ""])
def test_codes_iso_does_not_assign_are_refused(code: str) -> None:
    assert not is_iso_country(code)


@pytest.mark.parametrize(
    ("currency", "decimals"),
    [("USD", 2), ("EUR", 2), ("GBP", 2), ("CHF", 2), ("JPY", 0), ("AED", 2), ("ZAR", 2)],
)
def test_minor_units_are_iso_4217(currency: str, decimals: int) -> None:
    assert MINOR_UNITS[currency] == decimals
    assert iso4217.Currency(currency).exponent == decimals


def test_booked_currencies_are_the_broker_choice() -> None:
    assert tuple(MINOR_UNITS) == BOOKED_CURRENCIES
    assert len(set(BOOKED_CURRENCIES)) == len(BOOKED_CURRENCIES)
    for code in BOOKED_CURRENCIES:
        assert MINOR_UNITS[code] == iso4217.Currency(code).exponent


def test_a_currency_iso_knows_but_the_broker_does_not_book_is_refused() -> None:
    assert iso4217.Currency("KWD").exponent == 3
    with pytest.raises(ValueError, match="unsupported currency"):
        Money.of("1.000", "KWD")


def test_minor_units_drive_rounding() -> None:
    assert Money.of("1234", "JPY").to_minor_units() == 1234
    assert Money.of("12.34", "USD").to_minor_units() == 1234
    assert Money.of("0.5", "JPY").rounded().amount == 0
    assert not Money.of("1.5", "JPY").is_exact()
