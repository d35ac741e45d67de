"""Sanctions and PEP screening: the value types and the pure rules around a name match.

The lists (OFAC SDN, EU FSF, UN SC consolidated, a PEP list) are parsed by `screening.formats`
into `ListSnapshot`s of `ListedParty`s; `screening.matcher.Screener` compares a
`ScreeningSubject` with them and answers `ScreeningHit`s. Everything here is frozen pydantic so
it can travel as a Temporal payload.

Scores are integers 0..100. A hit at or above `ALERT_THRESHOLD` goes to a human reviewer; hits
between `REPORT_FLOOR` and the threshold are shown (the "review band") but raise no alert.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.countries import is_iso_country

# A hit scoring this or more goes to a compliance officer. Tuned on the labelled pairs of
# screening/samples/labelled_queries.csv: every listed name and published alias scores 100,
# unpublished transliterations 90-97, the near misses (Kim Jong Il, Putilin, Petrovich,
# Gazprom/Gazprombank) are rejected at the token level and never reach 60.
ALERT_THRESHOLD = 80
# Hits below this are not reported at all; between it and ALERT_THRESHOLD they are visible to a
# reviewer looking at the subject but do not alert (e.g. a surname-only query, a weak alias).
REPORT_FLOOR = 60

# Secondary attributes are tie-breakers on top of the name score (OpenSanctions logic-v1 uses
# -0.15/-0.2 for a disjoint DOB and -0.2 for a country mismatch). Missing data is neutral.
DOB_AGREE_BONUS = 5
DOB_DISJOINT_PENALTY = 15
NATIONALITY_AGREE_BONUS = 5
NATIONALITY_DIFFER_PENALTY = 10
COUNTRY_AGREE_BONUS = 3  # residence only ever agrees: expatriates are common, so no penalty
# "circa 1951" and UN "APPROXIMATELY" widen the year by this much on each side.
CIRCA_YEARS = 1

DobVerdict = Literal["agree", "disjoint", "unknown"]
NationalityVerdict = Literal["agree", "differ", "unknown"]


class ListSource(StrEnum):
    OFAC_SDN = "ofac_sdn"
    EU_FSF = "eu_fsf"
    UN_SC = "un_sc"
    PEP = "pep"


class PartyKind(StrEnum):
    PERSON = "person"
    ENTITY = "entity"
    VESSEL = "vessel"
    AIRCRAFT = "aircraft"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ListedName(_Frozen):
    """One name of a listed party, as published. Weak aliases (OFAC `category=weak`, UN `Low`,
    EU `strong=false`) only count on an exact normalised match."""

    text: str = Field(min_length=1)
    strong: bool = True


class BirthDate(_Frozen):
    """A published date of birth at the precision the list gives it.

    exact date: year_from == year_to, month and day set; year-month: day None; year: month
    None; year range (UN BETWEEN, EU yearRangeFrom/To, OFAC `1929 to 1930`): year_from <
    year_to; circa widens the years by CIRCA_YEARS. `text` keeps the published wording.
    """

    year_from: int = Field(ge=1800, le=2200)
    year_to: int = Field(ge=1800, le=2200)
    month: int | None = Field(default=None, ge=1, le=12)
    day: int | None = Field(default=None, ge=1, le=31)
    circa: bool = False
    text: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> BirthDate:
        if self.year_from > self.year_to:
            raise ValueError("year_from is after year_to")
        if self.month is not None and self.year_from != self.year_to:
            raise ValueError("a month needs a single year")
        if self.day is not None:
            if self.month is None:
                raise ValueError("a day needs a month")
            date(self.year_from, self.month, self.day)  # raises on 31 Feb
        return self

    @classmethod
    def exact(cls, value: date, text: str = "") -> BirthDate:
        return cls(
            year_from=value.year, year_to=value.year, month=value.month, day=value.day, text=text
        )

    @classmethod
    def year_month(cls, year: int, month: int, text: str = "") -> BirthDate:
        return cls(year_from=year, year_to=year, month=month, text=text)

    @classmethod
    def year(cls, year: int, *, circa: bool = False, text: str = "") -> BirthDate:
        return cls(year_from=year, year_to=year, circa=circa, text=text)

    @classmethod
    def between(cls, first: int, last: int, *, circa: bool = False, text: str = "") -> BirthDate:
        return cls(year_from=first, year_to=last, circa=circa, text=text)

    def verdict(self, dob: date) -> DobVerdict:
        slack = CIRCA_YEARS if self.circa else 0
        if not self.year_from - slack <= dob.year <= self.year_to + slack:
            return "disjoint"
        if self.circa or self.month is None:
            return "agree"
        if dob.month != self.month or (self.day is not None and dob.day != self.day):
            return "disjoint"
        return "agree"


def dob_compatible(spec: BirthDate | Iterable[BirthDate], dob: date | None) -> DobVerdict:
    """Lists give several DOBs: agree if any overlaps, disjoint only if all are disjoint."""
    specs = (spec,) if isinstance(spec, BirthDate) else tuple(spec)
    if dob is None or not specs:
        return "unknown"
    verdicts = {s.verdict(dob) for s in specs}
    return "agree" if "agree" in verdicts else "disjoint"


def _iso2(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.strip().upper()
    if not is_iso_country(code):
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


class ListedParty(_Frozen):
    source: ListSource
    key: str = Field(min_length=1)  # OFAC uid, EU logicalId, UN DATAID, PEP id
    kind: PartyKind
    names: tuple[ListedName, ...] = Field(min_length=1)  # the first is the primary name
    birth_dates: tuple[BirthDate, ...] = ()
    nationalities: tuple[str, ...] = ()  # ISO2, nationality and citizenship together
    programmes: tuple[str, ...] = ()
    listed_on: date | None = None
    reference: str | None = None  # UN `LYi.014`, EU `EU.27.28`

    @field_validator("nationalities")
    @classmethod
    def _codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for c in (_iso2(v) for v in value) if c))

    @property
    def primary_name(self) -> str:
        return self.names[0].text

    @property
    def qualified_key(self) -> str:
        """Unique across lists: `ofac_sdn:12606`."""
        return f"{self.source.value}:{self.key}"


class ListSnapshot(_Frozen):
    source: ListSource
    published_at: datetime | date
    parties: tuple[ListedParty, ...]
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")  # sha256 of the source bytes
    notes: tuple[str, ...] = ()  # data quirks skipped while parsing (e.g. unreadable DOB text)


class ScreeningSubject(_Frozen):
    """A client (or a payer, a beneficiary) to screen. Vessels and aircraft are never subjects."""

    full_name: str = Field(min_length=1, max_length=500)
    date_of_birth: date | None = None
    nationality: str | None = None  # ISO2
    country: str | None = None  # ISO2, residence
    kind: Literal[PartyKind.PERSON, PartyKind.ENTITY] = PartyKind.PERSON

    @field_validator("full_name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("full_name is blank")
        return value

    @field_validator("nationality", "country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return _iso2(value)


def nationality_compatible(
    nationalities: Iterable[str], subject: ScreeningSubject
) -> NationalityVerdict:
    """Compare the subject's nationality with the party's; residence can only agree."""
    listed = set(nationalities)
    if not listed:
        return "unknown"
    if subject.nationality is not None:
        return "agree" if subject.nationality in listed else "differ"
    return "unknown"


def secondary_adjustment(
    dob: DobVerdict, nationality: NationalityVerdict, country_agrees: bool
) -> int:
    """Points added to (or taken from) a name score for what else is known of the subject."""
    points = {"agree": DOB_AGREE_BONUS, "disjoint": -DOB_DISJOINT_PENALTY, "unknown": 0}[dob]
    points += {
        "agree": NATIONALITY_AGREE_BONUS,
        "differ": -NATIONALITY_DIFFER_PENALTY,
        "unknown": 0,
    }[nationality]
    if country_agrees and nationality != "agree":
        points += COUNTRY_AGREE_BONUS
    return points


class ScreeningHit(_Frozen):
    source: ListSource
    party_key: str
    kind: PartyKind
    listed_name: str  # the published name that matched
    primary_name: str
    reference: str | None = None
    score: int = Field(ge=0, le=100)  # name score adjusted by DOB / nationality
    name_score: int = Field(ge=0, le=100)
    is_pep: bool
    # Why: {"name": "token alignment", "tokens": "muammar=muammar exact; ...", "dob":
    # "disjoint", "nationality": "agree", "weak_alias": "exact", "missing": "moros", ...}
    factors: dict[str, str | int] = Field(default_factory=dict)

    @property
    def is_alert(self) -> bool:
        return self.score >= ALERT_THRESHOLD
