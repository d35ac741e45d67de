"""Countries: ISO 3166-1 alpha-2 codes (the 249 officially assigned ones), the region whose
rules a resident is served under, and the AML country risk lists (FATF, EU).

The ISO codes are data that pycountry (Debian's iso-codes) maintains; the regions and the risk
lists are the broker's own choices and snapshots, kept here."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

import pycountry

from domain.errors import InvalidInput

# Read once at import: pycountry loads its database lazily, on first use.
ISO_COUNTRIES: frozenset[str] = frozenset(country.alpha_2 for country in pycountry.countries)


def is_iso_country(code: str) -> bool:
    return code in ISO_COUNTRIES


# --- Regions: which entity's rules (and which live MT5 groups) a client of a country gets. ---


class Region(StrEnum):
    EU = "eu"  # EEA rules: MiFID II, ESMA / national CFD product intervention measures
    UK = "uk"  # FCA rules: COBS, PS19/18 CFD restrictions, PS20/10 crypto-derivative ban
    INTL = "intl"  # everybody else: the broker's own table


EU_MEMBER_STATES: frozenset[str] = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)
EEA: frozenset[str] = EU_MEMBER_STATES | {"IS", "LI", "NO"}
# Parts of EU member states that ISO 3166-1 lists under a code of their own and that are inside
# the EU: Åland (FI) and the French outermost regions. Overseas countries and territories that
# are outside the EU (BL, PM, NC, PF, WF, TF, AW, CW, SX, BQ, GL, FO ...) are not here, nor is
# Svalbard (SJ), which the EEA Agreement does not cover.
EEA_TERRITORIES: frozenset[str] = frozenset({"AX", "GF", "GP", "MQ", "RE", "YT", "MF"})
# Served under UK (FCA) terms: the UK, the Crown Dependencies and Gibraltar. The Crown
# Dependencies and Gibraltar have regulators of their own; putting them under the UK entity is a
# choice, the conservative one (retail caps apply instead of the international table).
UK_REGION: frozenset[str] = frozenset({"GB", "GG", "JE", "IM", "GI"})


def region_of(country: str) -> Region:
    """The region whose rules a resident of `country` (ISO 3166-1 alpha-2) is served under."""
    if not is_iso_country(country):
        raise InvalidInput(
            f"country {country!r} is not an ISO 3166-1 alpha-2 code", field="country"
        )
    if country in EEA or country in EEA_TERRITORIES:
        return Region.EU
    if country in UK_REGION:
        return Region.UK
    return Region.INTL


# --- Country risk lists (AML). Each list is a snapshot: update it after every publication. ---

# FATF "High-Risk Jurisdictions subject to a Call for Action" ("black list"), unchanged from
# October 2022 up to and including the June 2026 plenary: DPRK, Iran, Myanmar.
FATF_CALL_FOR_ACTION: frozenset[str] = frozenset({"KP", "IR", "MM"})
# FATF "Jurisdictions under Increased Monitoring" ("grey list") as of the June 2026 plenary
# (17-19 June 2026): the October 2025 list (AO BO BG CM CI CD DZ HT KE LA LB MC NA NP SS SY VE
# VN VG YE), plus KW and PG (February 2026), plus BA and IQ (June 2026), minus DZ and NA
# (removed June 2026). Taken from published summaries of the plenaries, not from the FATF's
# own documents: check against fatf-gafi.org, and after the October 2026 plenary.
FATF_INCREASED_MONITORING: frozenset[str] = frozenset(
    "AO BA BG BO CD CI CM HT IQ KE KW LA LB MC NP PG SS SY VE VG VN YE".split()
)
FATF_LISTS_AS_OF = date(2026, 6, 19)
# EU list of high-risk third countries (Commission Delegated Regulation (EU) 2016/1675, Annex,
# as amended): the 2025 amendment in force since August 2025 (added DZ AO CI KE LA LB MC NA NP
# VE; removed BB GI JM PA PH SN UG AE) and Russia, listed by the Commission on 3 December 2025.
# Later amendments (following the FATF's 2026 changes) are not reflected: verify on EUR-Lex.
EU_HIGH_RISK_THIRD_COUNTRIES: frozenset[str] = frozenset(
    (
        "AF AO BF CD CI CM DZ HT IR KE KP LA LB MC ML MM MZ NA NG NP RU SS SY TT TZ VE VN VU YE ZA"
    ).split()
)
EU_HIGH_RISK_LIST_AS_OF = date(2025, 12, 3)
