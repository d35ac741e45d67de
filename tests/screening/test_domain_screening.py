"""The pure screening value types and rules of domain/screening.py."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from domain.screening import (
    ALERT_THRESHOLD,
    REPORT_FLOOR,
    BirthDate,
    ListedName,
    ListedParty,
    ListSource,
    PartyKind,
    ScreeningHit,
    ScreeningSubject,
    dob_compatible,
    nationality_compatible,
    secondary_adjustment,
)


@pytest.mark.parametrize(
    ("spec", "dob", "verdict"),
    [
        (BirthDate.exact(date(1975, 6, 14)), date(1975, 6, 14), "agree"),
        (BirthDate.exact(date(1975, 6, 14)), date(1975, 6, 15), "disjoint"),
        (BirthDate.exact(date(1975, 6, 14)), date(1976, 6, 14), "disjoint"),
        (BirthDate.year_month(2006, 5), date(2006, 5, 30), "agree"),
        (BirthDate.year_month(2006, 5), date(2006, 6, 1), "disjoint"),
        (BirthDate.year(1980), date(1980, 12, 31), "agree"),
        (BirthDate.year(1980), date(1981, 1, 1), "disjoint"),
        (BirthDate.between(1929, 1930), date(1930, 7, 1), "agree"),
        (BirthDate.between(1929, 1930), date(1931, 1, 1), "disjoint"),
        (BirthDate.year(1951, circa=True), date(1952, 3, 3), "agree"),  # circa: +-1 year
        (BirthDate.year(1951, circa=True), date(1953, 1, 1), "disjoint"),
    ],
)
def test_dob_compatible(spec: BirthDate, dob: date, verdict: str) -> None:
    assert dob_compatible(spec, dob) == verdict


def test_dob_several_specs_and_missing_data() -> None:
    specs = (BirthDate.year(1976), BirthDate.exact(date(1974, 2, 5)))
    assert dob_compatible(specs, date(1974, 2, 5)) == "agree"  # any one agrees
    assert dob_compatible(specs, date(1990, 1, 1)) == "disjoint"  # all disjoint
    assert dob_compatible(specs, None) == "unknown"
    assert dob_compatible((), date(1990, 1, 1)) == "unknown"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"year_from": 1990, "year_to": 1980},
        {"year_from": 1980, "year_to": 1981, "month": 5},
        {"year_from": 1980, "year_to": 1980, "day": 5},
        {"year_from": 1981, "year_to": 1981, "month": 2, "day": 29},
    ],
)
def test_birthdate_refuses_inconsistent_specs(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        BirthDate(**kwargs)


def test_subject_and_party_validate_countries() -> None:
    assert ScreeningSubject(full_name="A B", nationality="ru").nationality == "RU"
    with pytest.raises(ValidationError):
        ScreeningSubject(full_name="A B", nationality="XX")
    with pytest.raises(ValidationError):
        ScreeningSubject(full_name="   ")
    with pytest.raises(ValidationError):
        ScreeningSubject(full_name="A ship", kind=PartyKind.VESSEL)
    party = ListedParty(
        source=ListSource.UN_SC,
        key="1",
        kind=PartyKind.PERSON,
        names=(ListedName(text="A B"),),
        nationalities=("ly", "LY", "IQ"),
    )
    assert party.nationalities == ("LY", "IQ")
    assert party.qualified_key == "un_sc:1"
    with pytest.raises(ValidationError):
        ListedParty(source=ListSource.UN_SC, key="1", kind=PartyKind.PERSON, names=())


def test_nationality_and_adjustment() -> None:
    subject = ScreeningSubject(full_name="x", nationality="IQ", country="FR")
    assert nationality_compatible(("IQ",), subject) == "agree"
    assert nationality_compatible(("SY",), subject) == "differ"
    assert nationality_compatible((), subject) == "unknown"
    assert nationality_compatible(("IQ",), ScreeningSubject(full_name="x")) == "unknown"
    assert secondary_adjustment("unknown", "unknown", False) == 0
    assert secondary_adjustment("disjoint", "differ", False) < -(100 - ALERT_THRESHOLD)
    assert secondary_adjustment("agree", "agree", True) > 0


def test_thresholds_and_hit_payload_round_trip() -> None:
    assert 0 < REPORT_FLOOR < ALERT_THRESHOLD <= 100
    hit = ScreeningHit(
        source=ListSource.PEP,
        party_key="Q7747",
        kind=PartyKind.PERSON,
        listed_name="Vladimir Putin",
        primary_name="Vladimir Putin",
        score=ALERT_THRESHOLD,
        name_score=100,
        is_pep=True,
        factors={"dob": "unknown", "adjustment": 0},
    )
    assert hit.is_alert
    assert ScreeningHit.model_validate_json(hit.model_dump_json()) == hit
    with pytest.raises(ValidationError):
        ScreeningHit.model_validate(hit.model_dump() | {"score": 101})
