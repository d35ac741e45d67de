"""Country names as the lists write them -> ISO 3166-1 alpha-2.

The ISO 3166-1 names (short name, official name, common name) come from pycountry. OFAC writes
short names (`Russia`, `Iran`, `Korea, North`, `Burma`, `Congo, Democratic Republic of the`);
the UN writes UN-terminology names (`Democratic People's Republic of Korea`, `Iran (Islamic
Republic of)`, `Syrian Arab Republic`, `Russian Federation`): those ISO does not write are kept
here as aliases. An unknown name answers None, never an exception: a nationality we cannot
place is simply not compared. Names that are not countries (`Soviet Union`, `Yugoslavia`,
`Palestinian`, OFAC's `Region: Crimea`) stay unmapped on purpose.
"""

from __future__ import annotations

import re
import unicodedata

import pycountry

from domain.countries import is_iso_country

# What the lists (OFAC, UN) and common usage write that pycountry's ISO 3166-1 names do not
# (after _key: case, accents, punctuation and a leading "the" do not matter).
_ALIASES: dict[str, tuple[str, ...]] = {
    "AE": ("UAE", "U.A.E."),
    "BA": ("Bosnia-Herzegovina", "Bosnia"),
    "BN": ("Brunei",),
    "BQ": ("Caribbean Netherlands",),
    "BS": ("Bahamas, The",),
    "BY": ("Byelorussia",),
    "CD": (
        "Democratic Republic of the Congo",
        "Congo, Democratic Republic of the",
        "DR Congo",
        "DRC",
        "Congo (Kinshasa)",
        "Zaire",
    ),
    "CF": ("CAR",),
    "CG": ("Congo, Republic of the", "Congo (Brazzaville)"),
    "CI": ("Cote d Ivoire", "Ivory Coast"),
    "CN": ("China, People's Republic of",),
    "CV": ("Cape Verde",),
    "FK": ("Falkland Islands",),
    "FM": ("Micronesia",),
    "GB": ("Great Britain", "UK", "Britain"),
    "GM": ("Gambia, The",),
    "HK": ("Hong Kong SAR", "China, Hong Kong Special Administrative Region"),
    "KN": ("St. Kitts and Nevis",),
    "KP": ("Korea, North", "DPRK"),
    "KR": ("Republic of Korea", "Korea, South"),
    "LC": ("St. Lucia",),
    "LY": ("Libyan Arab Jamahiriya",),
    "MF": ("Saint Martin",),
    "MK": ("Macedonia", "The former Yugoslav Republic of Macedonia"),
    "MM": ("Burma",),
    "MO": ("Macau",),
    "NL": ("Holland",),
    "PS": ("Palestine", "West Bank", "Gaza", "Occupied Palestinian Territory"),
    "RU": ("Russia",),
    "SH": ("Saint Helena",),
    "SX": ("Sint Maarten",),
    "SZ": ("Swaziland",),
    "TL": ("East Timor",),
    "TR": ("Turkey",),
    "US": ("USA", "U.S.A.", "U.S."),
    "VA": ("Holy See", "Vatican", "Vatican City"),
    "VI": ("United States Virgin Islands",),
}


def _iso_names(country: pycountry.db.Country) -> tuple[str, ...]:
    fields = ("name", "official_name", "common_name")
    names = (getattr(country, field, None) for field in fields)
    return tuple(dict.fromkeys(name for name in names if isinstance(name, str)))


# code: names (the ISO names first, then the aliases). Read once at import.
_NAMES: dict[str, tuple[str, ...]] = {
    country.alpha_2: _iso_names(country) + _ALIASES.get(country.alpha_2, ())
    for country in pycountry.countries
}


def _key(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).replace("'", "")
    words = re.findall(r"[a-z0-9]+", folded)
    return " ".join(words[1:] if words[:1] == ["the"] else words)


_BY_NAME: dict[str, str] = {_key(name): code for code, names in _NAMES.items() for name in names}


def country_to_iso2(name: str | None) -> str | None:
    """`Russia` -> RU, `Korea, North` -> KP; an ISO2 code passes through; unknown -> None."""
    if not name or not name.strip():
        return None
    stripped = name.strip()
    if len(stripped) == 2 and stripped.isalpha() and is_iso_country(stripped.upper()):
        return stripped.upper()
    return _BY_NAME.get(_key(stripped))
