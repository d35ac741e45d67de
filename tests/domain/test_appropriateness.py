"""The appropriateness questionnaire: validation, scoring, outcomes, classification."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.appropriateness import (
    KNOWLEDGE_MAX,
    MAX_SCORE,
    QUESTIONNAIRE_VERSION,
    QUESTIONS,
    WARNING_NOT_APPROPRIATE,
    WARNING_WEAK_PASS,
    Appropriateness,
    AssetClass,
    ClientCategory,
    DepositBand,
    ProfessionalCriterion,
    QuestionKind,
    QuestionnaireAnswers,
    SourceOfFunds,
    assess,
    classify,
    expected_annual_deposits,
    option_ids,
    outcome_for,
    professional_criteria_met,
    source_of_funds,
)
from domain.errors import InvalidInput

CORRECT = {
    "k_leverage": "b",
    "k_margin_call": "a",
    "k_stop_out": "c",
    "k_loss_beyond_margin": "b",
    "k_pnl": "c",
    "k_stop_loss_gap": "a",
}
WRONG = {
    "k_leverage": "a",
    "k_margin_call": "dont_know",
    "k_stop_out": "a",
    "k_loss_beyond_margin": "a",
    "k_pnl": "d",
    "k_stop_loss_gap": "b",
}
NOVICE = {
    "e_trades_12m": "none",
    "e_years_trading": "never",
    "e_education_profession": "none",
    "p_trade_frequency": "no",
    "p_portfolio": "no",
    "p_financial_sector": "no",
    "f_source_of_funds": "salary",
    "f_expected_deposits": "up_to_10k",
}


def answers(right: int = 6, /, **overrides: str) -> QuestionnaireAnswers:
    """A novice with the first `right` knowledge questions answered correctly."""
    chosen = {
        qid: CORRECT[qid] if i < right else WRONG[qid] for i, qid in enumerate(CORRECT)
    } | NOVICE
    return QuestionnaireAnswers(answers=chosen | overrides)


EXPERT = {
    "e_trades_12m": "over_40",
    "e_years_trading": "over_3",
    "e_education_profession": "profession",
}

any_answers = st.fixed_dictionaries(
    {q.id: st.sampled_from([o.id for o in q.options]) for q in QUESTIONS}
).map(lambda chosen: QuestionnaireAnswers(answers=chosen))


def test_the_questionnaire_is_well_formed() -> None:
    ids = [q.id for q in QUESTIONS]
    assert len(ids) == len(set(ids))
    knowledge = [q for q in QUESTIONS if q.kind is QuestionKind.KNOWLEDGE]
    assert len(knowledge) >= 5
    for q in knowledge:
        assert [o.points > 0 for o in q.options].count(True) == 1, q.id
        assert q.explanation
        assert CORRECT[q.id] == next(o.id for o in q.options if o.points)
    for q in QUESTIONS:
        assert len({o.id for o in q.options}) == len(q.options), q.id
    assert MAX_SCORE == 100 and KNOWLEDGE_MAX == 60
    assert set(option_ids("f_source_of_funds")) == {s.value for s in SourceOfFunds}
    assert set(option_ids("f_expected_deposits")) == {b.value for b in DepositBand}
    assert option_ids("e_trades_12m") == ("none", "1_10", "11_40", "over_40")
    assert len(QUESTIONNAIRE_VERSION) <= 16  # questionnaire_responses.version is String(16)


def test_every_question_must_be_answered() -> None:
    chosen = dict(answers().answers)
    del chosen["k_pnl"]
    with pytest.raises(InvalidInput) as error:
        assess(QuestionnaireAnswers(answers=chosen))
    assert "k_pnl" in error.value.detail
    assert error.value.extra["field"] == "answers.k_pnl"


def test_an_unknown_option_is_refused_naming_the_question() -> None:
    with pytest.raises(InvalidInput) as error:
        assess(answers(e_years_trading="forever"))
    assert "e_years_trading" in error.value.detail and "forever" in error.value.detail


def test_an_answer_to_no_question_is_refused() -> None:
    with pytest.raises(InvalidInput) as error:
        assess(answers(k_favourite_colour="blue"))
    assert "k_favourite_colour" in error.value.detail


def test_answers_to_another_version_are_refused() -> None:
    with pytest.raises(InvalidInput) as error:
        assess(QuestionnaireAnswers(version="2019-01", answers=dict(answers().answers)))
    assert error.value.extra["field"] == "version"


def test_perfect_answers() -> None:
    result = assess(answers(**EXPERT))
    assert (result.score, result.max_score, result.knowledge_score) == (100, 100, 60)
    assert result.outcome is Appropriateness.APPROPRIATE
    assert result.leverage_cap is None
    assert result.refused_products == () and result.warnings == ()
    assert result.version == QUESTIONNAIRE_VERSION


def test_knowledge_without_experience_is_a_weak_pass() -> None:
    # 6 x 10 knowledge + 0 experience = 60: below 70, at least 45 with knowledge >= 30.
    result = assess(answers())
    assert (result.score, result.knowledge_score) == (60, 60)
    assert result.outcome is Appropriateness.APPROPRIATE_WITH_WARNING
    assert result.leverage_cap == 10
    assert result.refused_products == (AssetClass.CRYPTO,)
    assert result.warnings == (WARNING_WEAK_PASS,)


def test_a_little_experience_makes_a_pass() -> None:
    # 60 + 8 (1-10 trades) + 3 (under a year) = 71.
    result = assess(answers(e_trades_12m="1_10", e_years_trading="under_1"))
    assert result.score == 71
    assert result.outcome is Appropriateness.APPROPRIATE


def test_experience_does_not_make_up_for_missing_knowledge() -> None:
    # 3 right (30) + 40 experience = 70, but knowledge 30 < 40: weak pass, three explanations.
    result = assess(answers(3, **EXPERT))
    assert (result.score, result.knowledge_score) == (70, 30)
    assert result.outcome is Appropriateness.APPROPRIATE_WITH_WARNING
    assert len(result.warnings) == 1 + 3
    # 2 right (20) + 40 = 60: knowledge below 30, not appropriate.
    result = assess(answers(2, **EXPERT))
    assert result.score == 60
    assert result.outcome is Appropriateness.NOT_APPROPRIATE


def test_not_appropriate_refuses_every_leveraged_product() -> None:
    # 4 right (40) and no experience: 40 < 45.
    result = assess(answers(4))
    assert result.score == 40
    assert result.outcome is Appropriateness.NOT_APPROPRIATE
    assert result.refuses_leveraged_products
    assert set(result.refused_products) == set(AssetClass)
    assert result.leverage_cap is None
    assert result.warnings[0] == WARNING_NOT_APPROPRIATE
    assert len(result.warnings) == 1 + 2  # one explanation per wrong answer


def test_outcome_thresholds() -> None:
    assert outcome_for(70, 40) is Appropriateness.APPROPRIATE
    assert outcome_for(69, 60) is Appropriateness.APPROPRIATE_WITH_WARNING
    assert outcome_for(100, 30) is Appropriateness.APPROPRIATE_WITH_WARNING
    assert outcome_for(45, 30) is Appropriateness.APPROPRIATE_WITH_WARNING
    assert outcome_for(44, 40) is Appropriateness.NOT_APPROPRIATE
    assert outcome_for(60, 20) is Appropriateness.NOT_APPROPRIATE


def test_financial_profile_answers() -> None:
    chosen = answers(f_source_of_funds="inheritance", f_expected_deposits="50k_250k")
    assert source_of_funds(chosen) is SourceOfFunds.INHERITANCE
    assert expected_annual_deposits(chosen) is DepositBand.FROM_50K_TO_250K
    assert DepositBand.FROM_50K_TO_250K.upper_bound == 250_000
    assert DepositBand.OVER_250K.upper_bound is None


PRO_ALL = EXPERT | {"p_trade_frequency": "yes", "p_portfolio": "yes", "p_financial_sector": "yes"}


def test_two_of_three_criteria_on_request_make_a_professional() -> None:
    two = answers(**(PRO_ALL | {"p_portfolio": "no"}))
    assert professional_criteria_met(two) == (
        ProfessionalCriterion.TRADING_FREQUENCY,
        ProfessionalCriterion.SECTOR_EXPERIENCE,
    )
    assert classify(two, requested_professional=True) is ClientCategory.PROFESSIONAL
    assert classify(two, requested_professional=False) is ClientCategory.RETAIL


def test_one_criterion_is_not_enough() -> None:
    one = answers(**(EXPERT | {"p_portfolio": "yes"}))
    assert professional_criteria_met(one) == (ProfessionalCriterion.PORTFOLIO_SIZE,)
    assert classify(one, requested_professional=True) is ClientCategory.RETAIL


def test_a_contradicted_criterion_does_not_count() -> None:
    # "10 trades a quarter" but only 11-40 trades in 12 months; "a relevant role" but no
    # professional experience declared.
    chosen = answers(**(PRO_ALL | {"e_trades_12m": "11_40", "e_education_profession": "education"}))
    assert professional_criteria_met(chosen) == (ProfessionalCriterion.PORTFOLIO_SIZE,)
    assert classify(chosen, requested_professional=True) is ClientCategory.RETAIL


def test_a_professional_must_pass_the_test_without_warning() -> None:
    # All three criteria, but only 3 knowledge answers right: a weak pass.
    chosen = answers(3, **PRO_ALL)
    assert len(professional_criteria_met(chosen)) == 3
    assert assess(chosen).outcome is Appropriateness.APPROPRIATE_WITH_WARNING
    assert classify(chosen, requested_professional=True) is ClientCategory.RETAIL


def test_classify_validates_even_without_a_request() -> None:
    with pytest.raises(InvalidInput):
        classify(answers(p_portfolio="maybe"), requested_professional=False)


@given(any_answers)
def test_score_is_the_sum_of_the_chosen_points(chosen: QuestionnaireAnswers) -> None:
    result = assess(chosen)
    options = {q.id: q.option(chosen.answers[q.id]) for q in QUESTIONS}
    assert result.score == sum(
        o.points for q in QUESTIONS if q.scored and (o := options[q.id]) is not None
    )
    assert 0 <= result.knowledge_score <= result.score <= result.max_score == MAX_SCORE
    assert result.outcome is outcome_for(result.score, result.knowledge_score)
    if result.outcome is Appropriateness.APPROPRIATE:
        assert result.leverage_cap is None and result.refused_products == ()
    elif result.outcome is Appropriateness.APPROPRIATE_WITH_WARNING:
        assert result.leverage_cap == 10 and result.warnings[0] == WARNING_WEAK_PASS
    else:
        assert set(result.refused_products) == set(AssetClass)


@given(any_answers)
def test_never_professional_without_the_request(chosen: QuestionnaireAnswers) -> None:
    assert classify(chosen, requested_professional=False) is ClientCategory.RETAIL


@given(any_answers)
def test_professional_only_with_two_criteria_and_a_clean_pass(chosen: QuestionnaireAnswers) -> None:
    if classify(chosen, requested_professional=True) is ClientCategory.PROFESSIONAL:
        assert len(professional_criteria_met(chosen)) >= 2
        assert assess(chosen).outcome is Appropriateness.APPROPRIATE


@given(any_answers, st.sampled_from(list(CORRECT)))
def test_a_right_answer_never_lowers_the_outcome(chosen: QuestionnaireAnswers, qid: str) -> None:
    rank = {
        Appropriateness.NOT_APPROPRIATE: 0,
        Appropriateness.APPROPRIATE_WITH_WARNING: 1,
        Appropriateness.APPROPRIATE: 2,
    }
    before = assess(chosen)
    after = assess(QuestionnaireAnswers(answers=chosen.answers | {qid: CORRECT[qid]}))
    assert after.score >= before.score
    assert rank[after.outcome] >= rank[before.outcome]
