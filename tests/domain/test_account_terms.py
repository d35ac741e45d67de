"""Live account terms: leverage tables, account caps, groups, and leverage requests."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.account_terms import (
    BROKER_CAPS,
    ESMA_RETAIL_CAPS,
    LEVERAGE_LADDER,
    LIVE_GROUPS,
    AccountType,
    AssetClass,
    LeverageDecision,
    LiveAccountTerms,
    ProductRefused,
    Region,
    account_leverage_cap,
    check_leverage_request,
    group_currency,
    leverage_caps,
    live_group,
    live_terms,
    margin_rate_multipliers,
    regulatory_leverage_cap,
    terms_category,
)
from domain.appropriateness import (
    QUESTIONS,
    Appropriateness,
    AppropriatenessResult,
    ClientCategory,
    QuestionnaireAnswers,
    assess,
    classify,
)
from domain.errors import InvalidInput
from domain.risk import RiskLevel

EU, UK, INTL = Region.EU, Region.UK, Region.INTL
RETAIL, PRO_CLIENT = ClientCategory.RETAIL, ClientCategory.PROFESSIONAL
STANDARD, PRO = AccountType.STANDARD, AccountType.PRO
LOW, MEDIUM, HIGH = RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH

GROUP_NAMES = [
    "real\\eu\\standard",
    "real\\eu\\pro",
    "real\\eu\\standard-hr",
    "real\\eu\\pro-hr",
    "real\\uk\\standard",
    "real\\uk\\pro",
    "real\\uk\\standard-hr",
    "real\\uk\\pro-hr",
    "real\\intl\\standard",
    "real\\intl\\pro",
    "real\\intl\\standard-hr",
    "real\\intl\\pro-hr",
]


def result(outcome: Appropriateness) -> AppropriatenessResult:
    cap = 10 if outcome is Appropriateness.APPROPRIATE_WITH_WARNING else None
    return AppropriatenessResult(
        version="test",
        score=0,
        max_score=100,
        knowledge_score=0,
        knowledge_max=60,
        outcome=outcome,
        leverage_cap=cap,
        refused_products=(),
        warnings=(),
    )


PASS = result(Appropriateness.APPROPRIATE)
WEAK = result(Appropriateness.APPROPRIATE_WITH_WARNING)
FAIL = result(Appropriateness.NOT_APPROPRIATE)


def test_the_esma_retail_table() -> None:
    assert leverage_caps(EU, RETAIL) == {
        AssetClass.FX_MAJOR: 30,
        AssetClass.FX_MINOR_GOLD_MAJOR_INDEX: 20,
        AssetClass.COMMODITY_MINOR_INDEX: 10,
        AssetClass.EQUITY: 5,
        AssetClass.CRYPTO: 2,
    }


def test_uk_retail_gets_the_esma_caps_and_no_crypto() -> None:
    caps = leverage_caps(UK, RETAIL)
    assert AssetClass.CRYPTO not in caps
    assert caps == {c: v for c, v in ESMA_RETAIL_CAPS.items() if c is not AssetClass.CRYPTO}


@pytest.mark.parametrize(
    ("region", "category"),
    [(EU, PRO_CLIENT), (UK, PRO_CLIENT), (INTL, RETAIL), (INTL, PRO_CLIENT)],
)
def test_professionals_and_international_clients_get_the_broker_table(
    region: Region, category: ClientCategory
) -> None:
    assert leverage_caps(region, category) == BROKER_CAPS
    assert regulatory_leverage_cap(region, category) == 500


def test_leverage_caps_returns_a_copy() -> None:
    leverage_caps(EU, RETAIL)[AssetClass.FX_MAJOR] = 500
    assert leverage_caps(EU, RETAIL)[AssetClass.FX_MAJOR] == 30


def test_every_cap_is_on_the_ladder() -> None:
    for table in (ESMA_RETAIL_CAPS, BROKER_CAPS):
        assert set(table.values()) <= set(LEVERAGE_LADDER)
    assert 10 in LEVERAGE_LADDER and 100 in LEVERAGE_LADDER
    assert list(LEVERAGE_LADDER) == sorted(LEVERAGE_LADDER)


def test_margin_rate_multipliers() -> None:
    assert margin_rate_multipliers(EU, RETAIL) == {
        AssetClass.FX_MAJOR: 1,
        AssetClass.FX_MINOR_GOLD_MAJOR_INDEX: Decimal("1.5"),
        AssetClass.COMMODITY_MINOR_INDEX: 3,
        AssetClass.EQUITY: 6,
        AssetClass.CRYPTO: 15,
    }
    assert margin_rate_multipliers(INTL, RETAIL)[AssetClass.FX_MINOR_GOLD_MAJOR_INDEX] == Decimal(
        "2.5"
    )


@pytest.mark.parametrize(
    ("region", "category", "appropriateness", "risk", "cap"),
    [
        (EU, RETAIL, PASS, LOW, 30),
        (EU, RETAIL, PASS, HIGH, 30),
        (EU, RETAIL, WEAK, MEDIUM, 10),
        (UK, RETAIL, PASS, MEDIUM, 30),
        (EU, PRO_CLIENT, PASS, LOW, 500),
        (EU, PRO_CLIENT, PASS, HIGH, 100),
        (UK, PRO_CLIENT, WEAK, HIGH, 10),
        (INTL, RETAIL, PASS, LOW, 500),
        (INTL, RETAIL, PASS, MEDIUM, 500),
        (INTL, RETAIL, PASS, HIGH, 100),
        (INTL, RETAIL, WEAK, LOW, 10),
    ],
)
def test_account_leverage_cap(
    region: Region,
    category: ClientCategory,
    appropriateness: AppropriatenessResult,
    risk: RiskLevel,
    cap: int,
) -> None:
    assert account_leverage_cap(region, category, appropriateness, risk) == cap


def test_a_failed_test_refuses_the_product() -> None:
    with pytest.raises(ProductRefused) as error:
        account_leverage_cap(INTL, RETAIL, FAIL, LOW)
    assert error.value.status_code == 403
    with pytest.raises(ProductRefused):
        live_terms(EU, RETAIL, STANDARD, FAIL, LOW)


def test_the_live_groups() -> None:
    assert [g.name for g in LIVE_GROUPS] == GROUP_NAMES
    for group in LIVE_GROUPS:
        assert group_currency(group.name) == {EU: "EUR", UK: "GBP", INTL: "USD"}[group.region]
        assert group.currency == group_currency(group.name)
        assert group.high_risk == group.name.endswith("-hr")


@pytest.mark.parametrize("region", list(Region))
@pytest.mark.parametrize("account_type", list(AccountType))
@pytest.mark.parametrize("risk", list(RiskLevel))
def test_live_group(region: Region, account_type: AccountType, risk: RiskLevel) -> None:
    name = live_group(region, account_type, risk)
    assert name in GROUP_NAMES
    assert name.startswith(f"real\\{region.value}\\{account_type.value}")
    assert name.endswith("-hr") == (risk is HIGH)


def test_group_currency_of_an_unknown_group() -> None:
    with pytest.raises(InvalidInput):
        group_currency("demo\\standard")


def test_live_terms() -> None:
    assert live_terms(EU, RETAIL, STANDARD, PASS, LOW) == LiveAccountTerms(
        group="real\\eu\\standard", leverage=30, currency="EUR"
    )
    assert live_terms(UK, PRO_CLIENT, PRO, PASS, HIGH) == LiveAccountTerms(
        group="real\\uk\\pro-hr", leverage=100, currency="GBP"
    )
    assert live_terms(INTL, RETAIL, PRO, WEAK, MEDIUM) == LiveAccountTerms(
        group="real\\intl\\pro", leverage=10, currency="USD"
    )
    assert live_terms(INTL, RETAIL, STANDARD, PASS, HIGH) == LiveAccountTerms(
        group="real\\intl\\standard-hr", leverage=100, currency="USD"
    )


@pytest.mark.parametrize("region", [EU, UK])
def test_a_pro_account_in_the_eu_and_uk_needs_a_professional(region: Region) -> None:
    with pytest.raises(ProductRefused) as error:
        live_terms(region, RETAIL, PRO, PASS, LOW)
    assert error.value.extra["field"] == "account_type"


def test_a_professional_on_a_standard_account_is_run_as_retail() -> None:
    assert terms_category(EU, PRO_CLIENT, STANDARD) is RETAIL
    assert live_terms(EU, PRO_CLIENT, STANDARD, PASS, LOW).leverage == 30
    assert terms_category(INTL, RETAIL, PRO) is RETAIL
    assert terms_category(INTL, PRO_CLIENT, STANDARD) is PRO_CLIENT


@pytest.mark.parametrize(
    ("requested", "region", "category", "account_type", "appropriateness", "risk", "decision"),
    [
        (30, EU, RETAIL, STANDARD, PASS, LOW, LeverageDecision.WITHIN_CAP),
        (20, EU, RETAIL, STANDARD, PASS, LOW, LeverageDecision.WITHIN_CAP),
        (50, EU, RETAIL, STANDARD, PASS, LOW, LeverageDecision.REFUSED),
        (10, EU, RETAIL, STANDARD, WEAK, LOW, LeverageDecision.WITHIN_CAP),
        (20, EU, RETAIL, STANDARD, WEAK, LOW, LeverageDecision.NEEDS_APPROVAL),
        (30, UK, RETAIL, STANDARD, WEAK, HIGH, LeverageDecision.NEEDS_APPROVAL),
        (100, INTL, RETAIL, STANDARD, PASS, HIGH, LeverageDecision.WITHIN_CAP),
        (200, INTL, RETAIL, STANDARD, PASS, HIGH, LeverageDecision.NEEDS_APPROVAL),
        (500, INTL, RETAIL, PRO, PASS, HIGH, LeverageDecision.NEEDS_APPROVAL),
        (500, INTL, RETAIL, PRO, PASS, MEDIUM, LeverageDecision.WITHIN_CAP),
        (500, EU, PRO_CLIENT, PRO, PASS, LOW, LeverageDecision.WITHIN_CAP),
        (500, EU, PRO_CLIENT, STANDARD, PASS, LOW, LeverageDecision.REFUSED),
        (1, INTL, RETAIL, STANDARD, FAIL, LOW, LeverageDecision.REFUSED),
        (15, INTL, RETAIL, STANDARD, PASS, LOW, LeverageDecision.REFUSED),  # not on the ladder
        (0, INTL, RETAIL, STANDARD, PASS, LOW, LeverageDecision.REFUSED),
        (-30, EU, RETAIL, STANDARD, PASS, LOW, LeverageDecision.REFUSED),
        (1000, INTL, PRO_CLIENT, PRO, PASS, LOW, LeverageDecision.REFUSED),
    ],
)
def test_check_leverage_request(
    requested: int,
    region: Region,
    category: ClientCategory,
    account_type: AccountType,
    appropriateness: AppropriatenessResult,
    risk: RiskLevel,
    decision: LeverageDecision,
) -> None:
    assert (
        check_leverage_request(requested, region, category, account_type, appropriateness, risk)
        is decision
    )


def test_a_boolean_is_not_a_leverage() -> None:
    assert check_leverage_request(True, INTL, RETAIL, STANDARD, PASS, LOW) is (
        LeverageDecision.REFUSED
    )


# --- properties, over real questionnaire answers ---

any_answers = st.fixed_dictionaries(
    {q.id: st.sampled_from([o.id for o in q.options]) for q in QUESTIONS}
).map(lambda chosen: QuestionnaireAnswers(answers=chosen))
risks = st.sampled_from(list(RiskLevel))
account_types = st.sampled_from(list(AccountType))


@given(any_answers, st.sampled_from([EU, UK]), risks, st.booleans(), account_types)
def test_retail_eu_uk_never_exceeds_the_esma_table(
    chosen: QuestionnaireAnswers,
    region: Region,
    risk: RiskLevel,
    requested_professional: bool,
    account_type: AccountType,
) -> None:
    appropriateness = assess(chosen)
    category = classify(chosen, requested_professional)
    if category is not RETAIL:
        return
    for cls, cap in leverage_caps(region, RETAIL).items():
        assert cap <= ESMA_RETAIL_CAPS[cls]
    try:
        terms = live_terms(region, category, account_type, appropriateness, risk)
    except ProductRefused:
        assert appropriateness.outcome is Appropriateness.NOT_APPROPRIATE or account_type is PRO
        return
    assert terms.leverage <= ESMA_RETAIL_CAPS[AssetClass.FX_MAJOR]
    assert terms.leverage in LEVERAGE_LADDER
    for requested in LEVERAGE_LADDER:
        decision = check_leverage_request(
            requested, region, category, account_type, appropriateness, risk
        )
        if decision is not LeverageDecision.REFUSED:
            assert requested <= ESMA_RETAIL_CAPS[AssetClass.FX_MAJOR]


@given(
    any_answers,
    st.sampled_from(list(Region)),
    risks,
    st.booleans(),
    account_types,
)
def test_live_terms_leverage_is_within_cap_and_the_group_exists(
    chosen: QuestionnaireAnswers,
    region: Region,
    risk: RiskLevel,
    requested_professional: bool,
    account_type: AccountType,
) -> None:
    appropriateness = assess(chosen)
    category = classify(chosen, requested_professional)
    try:
        terms = live_terms(region, category, account_type, appropriateness, risk)
    except ProductRefused:
        return
    assert terms.group in GROUP_NAMES
    assert terms.currency == group_currency(terms.group)
    assert terms.leverage <= regulatory_leverage_cap(
        region, terms_category(region, category, account_type)
    )
    if risk is HIGH:
        assert terms.leverage <= 100
    if appropriateness.outcome is Appropriateness.APPROPRIATE_WITH_WARNING:
        assert terms.leverage <= 10
    assert (
        check_leverage_request(
            terms.leverage, region, category, account_type, appropriateness, risk
        )
        is LeverageDecision.WITHIN_CAP
    )


_ORDER = {
    LeverageDecision.WITHIN_CAP: 0,
    LeverageDecision.NEEDS_APPROVAL: 1,
    LeverageDecision.REFUSED: 2,
}


@given(
    st.sampled_from(list(Region)),
    st.sampled_from(list(ClientCategory)),
    account_types,
    st.sampled_from([PASS, WEAK, FAIL]),
    risks,
)
def test_leverage_decision_is_monotone_in_the_request(
    region: Region,
    category: ClientCategory,
    account_type: AccountType,
    appropriateness: AppropriatenessResult,
    risk: RiskLevel,
) -> None:
    try:
        terms_category(region, category, account_type)
    except ProductRefused:
        return
    decisions = [
        check_leverage_request(r, region, category, account_type, appropriateness, risk)
        for r in LEVERAGE_LADDER
    ]
    ranks = [_ORDER[d] for d in decisions]
    assert ranks == sorted(ranks)
    if appropriateness.outcome is not Appropriateness.NOT_APPROPRIATE:
        assert decisions[0] is LeverageDecision.WITHIN_CAP


@given(st.integers(min_value=-1000, max_value=1000))
def test_off_ladder_requests_are_refused(requested: int) -> None:
    decision = check_leverage_request(requested, INTL, PRO_CLIENT, PRO, PASS, LOW)
    assert (decision is LeverageDecision.REFUSED) == (requested not in LEVERAGE_LADDER)
