"""Country names: ISO's from pycountry, plus the hand-kept aliases the lists write."""

from __future__ import annotations

import pycountry
import pytest

from domain.countries import ISO_COUNTRIES
from screening import countries
from screening.countries import country_to_iso2

_FIELDS = ("name", "official_name", "common_name")


def _iso_names() -> list[tuple[str, str]]:
    return [
        (name, country.alpha_2)
        for country in pycountry.countries
        for field in _FIELDS
        if (name := getattr(country, field, None))
    ]


def test_every_iso_name_pycountry_knows_maps_to_its_code() -> None:
    for name, code in _iso_names():
        assert country_to_iso2(name) == code, name


def test_aliases_are_iso_codes_and_map_to_them() -> None:
    assert set(countries._ALIASES) <= ISO_COUNTRIES
    for code, aliases in countries._ALIASES.items():
        for alias in aliases:
            assert country_to_iso2(alias) == code, alias


def test_aliases_only_hold_what_pycountry_does_not_know() -> None:
    iso = {countries._key(name) for name, _ in _iso_names()}
    redundant = [
        alias
        for aliases in countries._ALIASES.values()
        for alias in aliases
        if countries._key(alias) in iso
    ]
    assert redundant == []


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Korea, North", "KP"),
        ("Korea, Democratic People's Republic of", "KP"),
        ("Burma", "MM"),
        ("Iran (Islamic Republic of)", "IR"),
        ("Iran, Islamic Republic of", "IR"),
        ("Congo, Democratic Republic of the", "CD"),
        ("Bolivia, Plurinational State of", "BO"),
        ("Palestine, State of", "PS"),
    ],
)
def test_list_spellings(name: str, code: str) -> None:
    assert country_to_iso2(name) == code
