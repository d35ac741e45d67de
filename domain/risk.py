"""The AML risk score of a client: points per risk factor, summed and capped at 100.

Every factor that adds points is kept on the assessment with its reason, so an officer (and a
regulator) sees why the client scored what they did. All points are positive: a client's score
never goes down when a factor is added. The level is read from the score alone, and a factor
that makes a client HIGH by itself (a FATF call-for-action country, a sanctions or PEP potential
match) is worth at least HIGH_FROM points, so the score and the level never disagree.

Thresholds, points and sources are in docs/onboarding-rules.md.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from domain.appropriateness import Appropriateness, DepositBand, SourceOfFunds
from domain.countries import (
    EU_HIGH_RISK_THIRD_COUNTRIES,
    FATF_CALL_FOR_ACTION,
    FATF_INCREASED_MONITORING,
    is_iso_country,
)
from domain.errors import InvalidInput
from domain.money import MINOR_UNITS


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        """0, 1, 2: compare levels by rank, never by their strings."""
        return _RANKS[self]


_RANKS: dict[RiskLevel, int] = {RiskLevel.LOW: 0, RiskLevel.MEDIUM: 1, RiskLevel.HIGH: 2}

MAX_SCORE = 100
MEDIUM_FROM = 25  # 0-24 LOW
HIGH_FROM = 50  # 25-49 MEDIUM, 50-100 HIGH: enhanced due diligence and four-eyes


class FactorName(StrEnum):
    RESIDENCE_FATF_CALL_FOR_ACTION = "residence_fatf_call_for_action"
    NATIONALITY_FATF_CALL_FOR_ACTION = "nationality_fatf_call_for_action"
    RESIDENCE_FATF_INCREASED_MONITORING = "residence_fatf_increased_monitoring"
    NATIONALITY_FATF_INCREASED_MONITORING = "nationality_fatf_increased_monitoring"
    RESIDENCE_EU_HIGH_RISK_THIRD_COUNTRY = "residence_eu_high_risk_third_country"
    NATIONALITY_EU_HIGH_RISK_THIRD_COUNTRY = "nationality_eu_high_risk_third_country"
    SANCTIONS_POTENTIAL_MATCH = "sanctions_potential_match"
    PEP_POTENTIAL_MATCH = "pep_potential_match"
    SCREENING_NEAR_MISS = "screening_near_miss"
    NOT_APPROPRIATE = "not_appropriate"
    APPROPRIATE_WITH_WARNING = "appropriate_with_warning"
    SOURCE_OF_FUNDS = "source_of_funds"
    EXPECTED_DEPOSITS = "expected_deposits"
    DEPOSITS_30D_LARGE = "deposits_30d_large"
    DEPOSITS_30D_ABOVE_DECLARED = "deposits_30d_above_declared"
    DEPOSITS_30D_MANY = "deposits_30d_many"
    AGE_YOUNG = "age_young"
    AGE_ELDERLY = "age_elderly"


# Points of the factors that are either there or not.
FACTOR_POINTS: dict[FactorName, int] = {
    FactorName.RESIDENCE_FATF_CALL_FOR_ACTION: 60,  # HIGH by itself
    FactorName.NATIONALITY_FATF_CALL_FOR_ACTION: 50,  # HIGH by itself
    FactorName.RESIDENCE_FATF_INCREASED_MONITORING: 25,
    FactorName.NATIONALITY_FATF_INCREASED_MONITORING: 10,
    FactorName.RESIDENCE_EU_HIGH_RISK_THIRD_COUNTRY: 25,
    FactorName.NATIONALITY_EU_HIGH_RISK_THIRD_COUNTRY: 10,
    FactorName.SANCTIONS_POTENTIAL_MATCH: 60,  # HIGH by itself, until an officer discounts it
    FactorName.PEP_POTENTIAL_MATCH: 50,  # HIGH by itself: PEPs need enhanced due diligence
    FactorName.SCREENING_NEAR_MISS: 10,
    FactorName.NOT_APPROPRIATE: 10,
    FactorName.APPROPRIATE_WITH_WARNING: 5,
    FactorName.DEPOSITS_30D_LARGE: 15,
    FactorName.DEPOSITS_30D_ABOVE_DECLARED: 20,
    FactorName.DEPOSITS_30D_MANY: 10,
    FactorName.AGE_YOUNG: 10,
    FactorName.AGE_ELDERLY: 10,
}
SOURCE_OF_FUNDS_POINTS: dict[SourceOfFunds, int] = {
    SourceOfFunds.SALARY: 0,
    SourceOfFunds.SAVINGS: 0,
    SourceOfFunds.INVESTMENTS: 5,
    SourceOfFunds.BUSINESS_INCOME: 10,  # cash-intensive businesses, commingled funds
    SourceOfFunds.INHERITANCE: 10,  # one-off, harder to evidence
    SourceOfFunds.OTHER: 15,  # unexplained
}
EXPECTED_DEPOSITS_POINTS: dict[DepositBand, int] = {
    DepositBand.UP_TO_10K: 0,
    DepositBand.FROM_10K_TO_50K: 5,
    DepositBand.FROM_50K_TO_250K: 15,
    DepositBand.OVER_250K: 25,
}

# Screening: a best hit at or above this score that the screener did not count as a potential
# match (its own match threshold is higher) still adds points.
NEAR_MISS_HIT_SCORE = 60
# Deposits over the last 30 days, compared nominally in the account currency (no FX rates here):
# EUR 15,000 is the AML directives' occasional-transaction threshold.
LARGE_30D_DEPOSITS = Decimal(15_000)
MANY_30D_DEPOSITS = 10
YOUNG_BELOW = 21  # money-mule recruitment targets young adults
ELDERLY_FROM = 75  # fraud victims, third parties operating the account


class ScreeningOutcome(Frozen):
    """What sanctions and PEP screening found for the client at onboarding."""

    sanctions_potential_matches: int = Field(ge=0)
    pep_potential_match: bool
    best_hit_score: int = Field(ge=0, le=100)  # 0 when there was no hit at all


class RiskInputs(Frozen):
    residence: str  # ISO 3166-1 alpha-2
    nationality: str  # ISO 3166-1 alpha-2
    screening: ScreeningOutcome
    appropriateness: Appropriateness
    appropriateness_score: int = Field(ge=0)
    source_of_funds: SourceOfFunds
    expected_annual_deposits: DepositBand
    # Deposits over the last 30 days (both zero at onboarding), in the account currency.
    deposits_30d_count: int = Field(ge=0)
    deposits_30d_amount: Decimal = Field(ge=0, allow_inf_nan=False)
    deposits_30d_currency: str
    age: int = Field(ge=0, le=120)


class RiskFactor(Frozen):
    name: FactorName
    points: int = Field(gt=0)
    detail: str


class RiskAssessment(Frozen):
    score: int = Field(ge=0, le=MAX_SCORE)
    level: RiskLevel
    factors: tuple[RiskFactor, ...]

    @property
    def points(self) -> int:
        """The sum of the factors' points, before the cap at MAX_SCORE."""
        return sum(f.points for f in self.factors)


def level_for(score: int) -> RiskLevel:
    if score >= HIGH_FROM:
        return RiskLevel.HIGH
    if score >= MEDIUM_FROM:
        return RiskLevel.MEDIUM
    return RiskLevel.LOW


def assess_client_risk(inputs: RiskInputs) -> RiskAssessment:
    _check(inputs)
    factors = (
        _country_factors("residence", inputs.residence)
        + _country_factors("nationality", inputs.nationality)
        + _screening_factors(inputs.screening)
        + _profile_factors(inputs)
        + _velocity_factors(inputs)
        + _age_factors(inputs.age)
    )
    score = min(MAX_SCORE, sum(f.points for f in factors))
    return RiskAssessment(score=score, level=level_for(score), factors=factors)


def requires_four_eyes(assessment: RiskAssessment) -> bool:
    """A HIGH-risk client is approved by two different compliance officers."""
    return assessment.level is RiskLevel.HIGH


def _check(inputs: RiskInputs) -> None:
    for field in ("residence", "nationality"):
        code = getattr(inputs, field)
        if not is_iso_country(code):
            raise InvalidInput(f"{field} {code!r} is not an ISO 3166-1 alpha-2 code", field=field)
    if inputs.deposits_30d_currency not in MINOR_UNITS:
        raise InvalidInput(
            f"unsupported currency {inputs.deposits_30d_currency!r}", field="deposits_30d_currency"
        )
    if (inputs.deposits_30d_count == 0) != (inputs.deposits_30d_amount == 0):
        raise InvalidInput(
            "the number and the amount of deposits of the last 30 days must both be zero or both"
            " be positive",
            field="deposits_30d_amount",
        )


def _factor(name: FactorName, detail: str, points: int | None = None) -> RiskFactor:
    return RiskFactor(
        name=name, points=FACTOR_POINTS[name] if points is None else points, detail=detail
    )


def _country_factors(role: str, country: str) -> tuple[RiskFactor, ...]:
    names = {
        "residence": (
            FactorName.RESIDENCE_FATF_CALL_FOR_ACTION,
            FactorName.RESIDENCE_FATF_INCREASED_MONITORING,
            FactorName.RESIDENCE_EU_HIGH_RISK_THIRD_COUNTRY,
        ),
        "nationality": (
            FactorName.NATIONALITY_FATF_CALL_FOR_ACTION,
            FactorName.NATIONALITY_FATF_INCREASED_MONITORING,
            FactorName.NATIONALITY_EU_HIGH_RISK_THIRD_COUNTRY,
        ),
    }[role]
    factors: list[RiskFactor] = []
    if country in FATF_CALL_FOR_ACTION:
        factors.append(
            _factor(names[0], f"{role} {country}: FATF high-risk jurisdiction (call for action)")
        )
    if country in FATF_INCREASED_MONITORING:
        factors.append(
            _factor(names[1], f"{role} {country}: FATF jurisdiction under increased monitoring")
        )
    if country in EU_HIGH_RISK_THIRD_COUNTRIES:
        factors.append(
            _factor(names[2], f"{role} {country}: on the EU list of high-risk third countries")
        )
    return tuple(factors)


def _screening_factors(screening: ScreeningOutcome) -> tuple[RiskFactor, ...]:
    factors: list[RiskFactor] = []
    if screening.sanctions_potential_matches:
        factors.append(
            _factor(
                FactorName.SANCTIONS_POTENTIAL_MATCH,
                f"{screening.sanctions_potential_matches} sanctions potential match(es), best hit"
                f" score {screening.best_hit_score}: to be reviewed before onboarding",
            )
        )
    if screening.pep_potential_match:
        factors.append(
            _factor(
                FactorName.PEP_POTENTIAL_MATCH,
                "politically exposed person potential match: enhanced due diligence, senior"
                " management approval",
            )
        )
    if (
        not screening.sanctions_potential_matches
        and not screening.pep_potential_match
        and screening.best_hit_score >= NEAR_MISS_HIT_SCORE
    ):
        factors.append(
            _factor(
                FactorName.SCREENING_NEAR_MISS,
                f"screening hit scored {screening.best_hit_score} without being a potential match",
            )
        )
    return tuple(factors)


def _profile_factors(inputs: RiskInputs) -> tuple[RiskFactor, ...]:
    factors: list[RiskFactor] = []
    if inputs.appropriateness is Appropriateness.NOT_APPROPRIATE:
        factors.append(
            _factor(
                FactorName.NOT_APPROPRIATE,
                f"appropriateness test failed (score {inputs.appropriateness_score}): profile does"
                " not fit leveraged trading",
            )
        )
    elif inputs.appropriateness is Appropriateness.APPROPRIATE_WITH_WARNING:
        factors.append(
            _factor(
                FactorName.APPROPRIATE_WITH_WARNING,
                f"appropriateness test passed with a warning (score"
                f" {inputs.appropriateness_score})",
            )
        )
    source_points = SOURCE_OF_FUNDS_POINTS[inputs.source_of_funds]
    if source_points:
        factors.append(
            _factor(
                FactorName.SOURCE_OF_FUNDS,
                f"source of funds: {inputs.source_of_funds.value}",
                source_points,
            )
        )
    band_points = EXPECTED_DEPOSITS_POINTS[inputs.expected_annual_deposits]
    if band_points:
        factors.append(
            _factor(
                FactorName.EXPECTED_DEPOSITS,
                f"expected annual deposits: {inputs.expected_annual_deposits.value}",
                band_points,
            )
        )
    return tuple(factors)


def _velocity_factors(inputs: RiskInputs) -> tuple[RiskFactor, ...]:
    amount, currency = inputs.deposits_30d_amount, inputs.deposits_30d_currency
    factors: list[RiskFactor] = []
    if amount >= LARGE_30D_DEPOSITS:
        factors.append(
            _factor(
                FactorName.DEPOSITS_30D_LARGE,
                f"{amount} {currency} deposited in 30 days (threshold {LARGE_30D_DEPOSITS})",
            )
        )
    declared = inputs.expected_annual_deposits.upper_bound
    if declared is not None and amount > declared:
        factors.append(
            _factor(
                FactorName.DEPOSITS_30D_ABOVE_DECLARED,
                f"{amount} {currency} deposited in 30 days, above the {declared} declared for a"
                " whole year",
            )
        )
    if inputs.deposits_30d_count >= MANY_30D_DEPOSITS:
        factors.append(
            _factor(
                FactorName.DEPOSITS_30D_MANY,
                f"{inputs.deposits_30d_count} deposits in 30 days (threshold {MANY_30D_DEPOSITS})",
            )
        )
    return tuple(factors)


def _age_factors(age: int) -> tuple[RiskFactor, ...]:
    if age < YOUNG_BELOW:
        return (_factor(FactorName.AGE_YOUNG, f"age {age}, under {YOUNG_BELOW}"),)
    if age >= ELDERLY_FROM:
        return (_factor(FactorName.AGE_ELDERLY, f"age {age}, {ELDERLY_FROM} or older"),)
    return ()
