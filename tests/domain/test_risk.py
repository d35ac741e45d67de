"""The AML risk score: every factor kept, score = capped sum, levels, the HIGH-by-itself factors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.appropriateness import Appropriateness, DepositBand, SourceOfFunds
from domain.countries import (
    EEA,
    EU_HIGH_RISK_THIRD_COUNTRIES,
    FATF_CALL_FOR_ACTION,
    FATF_INCREASED_MONITORING,
    ISO_COUNTRIES,
    Region,
    region_of,
)
from domain.errors import InvalidInput
from domain.risk import (
    EXPECTED_DEPOSITS_POINTS,
    FACTOR_POINTS,
    HIGH_FROM,
    MAX_SCORE,
    SOURCE_OF_FUNDS_POINTS,
    FactorName,
    RiskAssessment,
    RiskInputs,
    RiskLevel,
    ScreeningOutcome,
    assess_client_risk,
    level_for,
    requires_four_eyes,
)

CLEAR = ScreeningOutcome(sanctions_potential_matches=0, pep_potential_match=False, best_hit_score=0)


def inputs(**changes: Any) -> RiskInputs:
    """A 35-year-old German salary earner, screened clear, who passed the test: no factor."""
    base: dict[str, Any] = {
        "residence": "DE",
        "nationality": "DE",
        "screening": CLEAR,
        "appropriateness": Appropriateness.APPROPRIATE,
        "appropriateness_score": 80,
        "source_of_funds": SourceOfFunds.SALARY,
        "expected_annual_deposits": DepositBand.UP_TO_10K,
        "deposits_30d_count": 0,
        "deposits_30d_amount": Decimal(0),
        "deposits_30d_currency": "EUR",
        "age": 35,
    }
    return RiskInputs(**(base | changes))


def names(assessment: RiskAssessment) -> list[FactorName]:
    return [f.name for f in assessment.factors]


def test_an_ordinary_client_is_low_with_no_factor() -> None:
    result = assess_client_risk(inputs())
    assert (result.score, result.level, result.factors) == (0, RiskLevel.LOW, ())
    assert not requires_four_eyes(result)


def test_a_typical_medium_client() -> None:
    # Business income 10 + 50k-250k 15 = 25: MEDIUM.
    result = assess_client_risk(
        inputs(
            source_of_funds=SourceOfFunds.BUSINESS_INCOME,
            expected_annual_deposits=DepositBand.FROM_50K_TO_250K,
        )
    )
    assert names(result) == [FactorName.SOURCE_OF_FUNDS, FactorName.EXPECTED_DEPOSITS]
    assert [f.points for f in result.factors] == [10, 15]
    assert (result.score, result.level) == (25, RiskLevel.MEDIUM)
    assert "business_income" in result.factors[0].detail


@pytest.mark.parametrize("country", sorted(FATF_CALL_FOR_ACTION))
def test_residence_in_a_fatf_call_for_action_country_is_high_by_itself(country: str) -> None:
    result = assess_client_risk(inputs(residence=country))
    assert result.level is RiskLevel.HIGH
    assert FactorName.RESIDENCE_FATF_CALL_FOR_ACTION in names(result)
    assert requires_four_eyes(result)


def test_nationality_of_a_call_for_action_country_is_high_by_itself() -> None:
    result = assess_client_risk(inputs(nationality="IR"))
    # IR is also on the EU list: 50 + 10.
    assert names(result) == [
        FactorName.NATIONALITY_FATF_CALL_FOR_ACTION,
        FactorName.NATIONALITY_EU_HIGH_RISK_THIRD_COUNTRY,
    ]
    assert (result.score, result.level) == (60, RiskLevel.HIGH)


def test_grey_list_residence_alone_is_medium_and_with_the_eu_list_high() -> None:
    # Bulgaria: FATF grey list, an EU member (never on the EU third-country list).
    bulgaria = assess_client_risk(inputs(residence="BG"))
    assert names(bulgaria) == [FactorName.RESIDENCE_FATF_INCREASED_MONITORING]
    assert (bulgaria.score, bulgaria.level) == (25, RiskLevel.MEDIUM)
    # Kenya: on both lists, 25 + 25.
    kenya = assess_client_risk(inputs(residence="KE", nationality="KE"))
    assert names(kenya) == [
        FactorName.RESIDENCE_FATF_INCREASED_MONITORING,
        FactorName.RESIDENCE_EU_HIGH_RISK_THIRD_COUNTRY,
        FactorName.NATIONALITY_FATF_INCREASED_MONITORING,
        FactorName.NATIONALITY_EU_HIGH_RISK_THIRD_COUNTRY,
    ]
    assert (kenya.score, kenya.level) == (70, RiskLevel.HIGH)
    # Russia: on the EU list only.
    russia = assess_client_risk(inputs(residence="RU", nationality="RU"))
    assert (russia.score, russia.level) == (35, RiskLevel.MEDIUM)


def test_a_sanctions_potential_match_is_high_by_itself() -> None:
    screening = ScreeningOutcome(
        sanctions_potential_matches=2, pep_potential_match=False, best_hit_score=91
    )
    result = assess_client_risk(inputs(screening=screening))
    assert names(result) == [FactorName.SANCTIONS_POTENTIAL_MATCH]
    assert "2 sanctions potential match" in result.factors[0].detail
    assert "91" in result.factors[0].detail
    assert (result.score, result.level) == (60, RiskLevel.HIGH)


def test_a_pep_is_at_least_high() -> None:
    screening = ScreeningOutcome(
        sanctions_potential_matches=0, pep_potential_match=True, best_hit_score=88
    )
    result = assess_client_risk(inputs(screening=screening))
    assert names(result) == [FactorName.PEP_POTENTIAL_MATCH]
    assert (result.score, result.level) == (50, RiskLevel.HIGH)


def test_a_screening_near_miss_adds_points_only_without_a_match() -> None:
    near = ScreeningOutcome(
        sanctions_potential_matches=0, pep_potential_match=False, best_hit_score=60
    )
    assert names(assess_client_risk(inputs(screening=near))) == [FactorName.SCREENING_NEAR_MISS]
    below = near.model_copy(update={"best_hit_score": 59})
    assert assess_client_risk(inputs(screening=below)).factors == ()


def test_velocity_factors() -> None:
    # 12 deposits, 16,000 EUR in 30 days, 10k declared for the year: 15 + 20 + 10 = 45.
    result = assess_client_risk(
        inputs(deposits_30d_count=12, deposits_30d_amount=Decimal("16000.00"))
    )
    assert names(result) == [
        FactorName.DEPOSITS_30D_LARGE,
        FactorName.DEPOSITS_30D_ABOVE_DECLARED,
        FactorName.DEPOSITS_30D_MANY,
    ]
    assert (result.score, result.level) == (45, RiskLevel.MEDIUM)
    # Just under every threshold.
    quiet = assess_client_risk(inputs(deposits_30d_count=9, deposits_30d_amount=Decimal("9999.99")))
    assert quiet.factors == ()


def test_the_top_band_has_no_declared_limit_to_exceed() -> None:
    result = assess_client_risk(
        inputs(
            expected_annual_deposits=DepositBand.OVER_250K,
            deposits_30d_count=1,
            deposits_30d_amount=Decimal(400_000),
        )
    )
    assert names(result) == [FactorName.EXPECTED_DEPOSITS, FactorName.DEPOSITS_30D_LARGE]


def test_age_and_appropriateness_factors() -> None:
    young = assess_client_risk(inputs(age=19, appropriateness=Appropriateness.NOT_APPROPRIATE))
    assert names(young) == [FactorName.NOT_APPROPRIATE, FactorName.AGE_YOUNG]
    assert young.score == 20
    old = assess_client_risk(
        inputs(age=75, appropriateness=Appropriateness.APPROPRIATE_WITH_WARNING)
    )
    assert names(old) == [FactorName.APPROPRIATE_WITH_WARNING, FactorName.AGE_ELDERLY]
    assert old.score == 15
    assert assess_client_risk(inputs(age=21)).factors == ()
    assert assess_client_risk(inputs(age=74)).factors == ()


def test_the_score_is_capped_at_100_but_every_factor_is_kept() -> None:
    worst = ScreeningOutcome(
        sanctions_potential_matches=1, pep_potential_match=True, best_hit_score=99
    )
    result = assess_client_risk(inputs(residence="KP", nationality="KP", screening=worst, age=80))
    assert result.score == MAX_SCORE
    assert result.points == 60 + 25 + 50 + 10 + 60 + 50 + 10  # KP is on the EU list too
    assert len(result.factors) == 7


def test_levels() -> None:
    assert [level_for(s) for s in (0, 24, 25, 49, 50, 100)] == [
        RiskLevel.LOW,
        RiskLevel.LOW,
        RiskLevel.MEDIUM,
        RiskLevel.MEDIUM,
        RiskLevel.HIGH,
        RiskLevel.HIGH,
    ]
    assert RiskLevel.LOW.rank < RiskLevel.MEDIUM.rank < RiskLevel.HIGH.rank


def test_the_high_by_itself_factors_are_worth_high() -> None:
    for name in (
        FactorName.RESIDENCE_FATF_CALL_FOR_ACTION,
        FactorName.NATIONALITY_FATF_CALL_FOR_ACTION,
        FactorName.SANCTIONS_POTENTIAL_MATCH,
        FactorName.PEP_POTENTIAL_MATCH,
    ):
        assert FACTOR_POINTS[name] >= HIGH_FROM
    assert all(p > 0 for p in FACTOR_POINTS.values())
    assert all(p >= 0 for p in SOURCE_OF_FUNDS_POINTS.values())
    assert all(p >= 0 for p in EXPECTED_DEPOSITS_POINTS.values())


@pytest.mark.parametrize(
    "changes",
    [
        {"residence": "XX"},
        {"nationality": "de"},
        {"deposits_30d_currency": "XYZ"},
        {"deposits_30d_count": 1},  # a deposit of nothing
        {"deposits_30d_amount": Decimal(5)},  # money without a deposit
    ],
)
def test_inconsistent_inputs_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        assess_client_risk(inputs(**changes))


def test_country_lists() -> None:
    assert FATF_CALL_FOR_ACTION == {"KP", "IR", "MM"}
    lists = FATF_CALL_FOR_ACTION | FATF_INCREASED_MONITORING | EU_HIGH_RISK_THIRD_COUNTRIES
    assert lists <= ISO_COUNTRIES
    assert not EU_HIGH_RISK_THIRD_COUNTRIES & EEA  # the EU list is of third countries
    assert len(EEA) == 30


@pytest.mark.parametrize(
    ("country", "region"),
    [
        ("DE", Region.EU),
        ("NO", Region.EU),
        ("IS", Region.EU),
        ("LI", Region.EU),
        ("RE", Region.EU),  # Réunion, a French outermost region
        ("AX", Region.EU),
        ("GB", Region.UK),
        ("JE", Region.UK),
        ("GG", Region.UK),
        ("IM", Region.UK),
        ("GI", Region.UK),
        ("CH", Region.INTL),
        ("US", Region.INTL),
        ("NC", Region.INTL),  # New Caledonia: French, but outside the EU
        ("SJ", Region.INTL),
    ],
)
def test_region_of(country: str, region: Region) -> None:
    assert region_of(country) is region


def test_region_of_an_unknown_country() -> None:
    with pytest.raises(InvalidInput):
        region_of("EU")


# --- properties ---

countries = st.sampled_from(sorted(ISO_COUNTRIES))
screenings = st.builds(
    ScreeningOutcome,
    sanctions_potential_matches=st.integers(0, 3),
    pep_potential_match=st.booleans(),
    best_hit_score=st.integers(0, 100),
)


@st.composite
def risk_inputs(draw: st.DrawFn) -> RiskInputs:
    count = draw(st.integers(0, 40))
    amount = (
        Decimal(0)
        if count == 0
        else draw(st.decimals(min_value=Decimal("0.01"), max_value=Decimal(500_000), places=2))
    )
    return RiskInputs(
        residence=draw(countries),
        nationality=draw(countries),
        screening=draw(screenings),
        appropriateness=draw(st.sampled_from(Appropriateness)),
        appropriateness_score=draw(st.integers(0, 100)),
        source_of_funds=draw(st.sampled_from(SourceOfFunds)),
        expected_annual_deposits=draw(st.sampled_from(DepositBand)),
        deposits_30d_count=count,
        deposits_30d_amount=amount,
        deposits_30d_currency=draw(st.sampled_from(["EUR", "GBP", "USD"])),
        age=draw(st.integers(18, 100)),
    )


@given(risk_inputs())
def test_score_is_the_capped_sum_of_every_factor(given_inputs: RiskInputs) -> None:
    result = assess_client_risk(given_inputs)
    assert all(f.points > 0 and f.detail for f in result.factors)
    assert len({f.name for f in result.factors}) == len(result.factors)
    assert result.score == min(MAX_SCORE, sum(f.points for f in result.factors))
    assert result.level is level_for(result.score)
    assert requires_four_eyes(result) == (result.level is RiskLevel.HIGH)
    # The round trip the case record makes keeps every factor.
    assert RiskAssessment.model_validate_json(result.model_dump_json()) == result


@given(risk_inputs())
def test_the_high_by_itself_factors_always_give_high(given_inputs: RiskInputs) -> None:
    screening = given_inputs.screening
    if (
        screening.sanctions_potential_matches
        or screening.pep_potential_match
        or given_inputs.residence in FATF_CALL_FOR_ACTION
        or given_inputs.nationality in FATF_CALL_FOR_ACTION
    ):
        assert assess_client_risk(given_inputs).level is RiskLevel.HIGH


def _worse(base: RiskInputs, change: str, draw_country: str) -> RiskInputs:
    """`base` with one more risk factor (or a stronger one); never one fewer."""
    screening = base.screening
    if change == "sanctions":
        return base.model_copy(
            update={
                "screening": screening.model_copy(
                    update={
                        "sanctions_potential_matches": screening.sanctions_potential_matches + 1
                    }
                )
            }
        )
    if change == "pep":
        return base.model_copy(
            update={"screening": screening.model_copy(update={"pep_potential_match": True})}
        )
    if change == "listed_residence":
        return base.model_copy(update={"residence": draw_country})
    if change == "listed_nationality":
        return base.model_copy(update={"nationality": draw_country})
    if change == "failed_test":
        return base.model_copy(update={"appropriateness": Appropriateness.NOT_APPROPRIATE})
    if change == "unexplained_funds":
        return base.model_copy(update={"source_of_funds": SourceOfFunds.OTHER})
    if change == "more_deposits":
        return base.model_copy(
            update={
                "deposits_30d_count": base.deposits_30d_count + 10,
                "deposits_30d_amount": base.deposits_30d_amount + Decimal(20_000),
            }
        )
    raise AssertionError(change)


@given(
    risk_inputs(),
    st.sampled_from(
        [
            "sanctions",
            "pep",
            "listed_residence",
            "listed_nationality",
            "failed_test",
            "unexplained_funds",
            "more_deposits",
        ]
    ),
    st.sampled_from(sorted(FATF_CALL_FOR_ACTION | FATF_INCREASED_MONITORING)),
)
def test_score_is_monotone_in_added_risk(base: RiskInputs, change: str, country: str) -> None:
    before = assess_client_risk(base)
    # A listed country replacing an unlisted one only adds; replacing a listed one is no "add".
    if change.startswith("listed_") and getattr(base, change.removeprefix("listed_")) in (
        FATF_CALL_FOR_ACTION | FATF_INCREASED_MONITORING | EU_HIGH_RISK_THIRD_COUNTRIES
    ):
        return
    after = assess_client_risk(_worse(base, change, country))
    assert after.score >= before.score
    assert after.level.rank >= before.level.rank
    # Every factor stays, but for two that the worse one replaces.
    replaced = {FactorName.SCREENING_NEAR_MISS, FactorName.APPROPRIATE_WITH_WARNING}
    assert {f.name for f in before.factors} - replaced <= {f.name for f in after.factors}
