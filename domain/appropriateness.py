"""The appropriateness test of leveraged CFDs, and the client's category (retail / professional).

MiFID II art. 25(3) (FCA COBS 10 in the UK) makes a firm ask a client who is not advised about
their knowledge and experience of the product before it is sold, and warn them when it is not
appropriate; ESMA's CFD product intervention (Decision (EU) 2018/796, now national measures)
and the FCA's PS19/18 set the retail leverage caps this test can only lower. The questionnaire
is fixed and versioned: an answer set says which version it answers, and a stored result can be
read again with the questions it was given.

Scoring: only knowledge and experience questions carry points (100 in all: 60 knowledge,
40 experience). The professional-elective criteria (MiFID II Annex II, II.1) decide the category,
and the financial-profile questions (source of funds, expected deposits) feed the AML risk score;
neither is scored here. See docs/onboarding-rules.md for the tables.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from domain.errors import InvalidInput
from domain.frozen import Frozen

QUESTIONNAIRE_VERSION = "2026-11"


class AssetClass(StrEnum):
    """The leveraged products (CFD classes) the broker offers, as ESMA groups them for the caps.

    Defined here because the appropriateness result names the products it refuses;
    `domain.account_terms` holds the leverage table of each class and re-exports this enum.
    """

    FX_MAJOR = "fx_major"  # pairs of two of USD EUR JPY GBP CAD CHF
    FX_MINOR_GOLD_MAJOR_INDEX = "fx_minor_gold_major_index"
    COMMODITY_MINOR_INDEX = "commodity_minor_index"  # commodities but gold, other indices
    EQUITY = "equity"  # single shares and other reference values
    CRYPTO = "crypto"


class QuestionKind(StrEnum):
    KNOWLEDGE = "knowledge"  # one correct answer, scored
    EXPERIENCE = "experience"  # scored by degree
    PROFESSIONAL_CRITERION = "professional_criterion"  # MiFID II Annex II, II.1: not scored
    FINANCIAL_PROFILE = "financial_profile"  # for the AML risk score: not scored


class AnswerOption(Frozen):
    id: str
    text: str
    points: int = 0


class Question(Frozen):
    id: str
    kind: QuestionKind
    text: str
    options: tuple[AnswerOption, ...]
    # Knowledge questions: the idea behind the correct answer, given as a warning when the
    # client answered wrong.
    explanation: str = ""

    @property
    def scored(self) -> bool:
        return self.kind in (QuestionKind.KNOWLEDGE, QuestionKind.EXPERIENCE)

    @property
    def max_points(self) -> int:
        return max(option.points for option in self.options) if self.scored else 0

    def option(self, option_id: str) -> AnswerOption | None:
        return next((o for o in self.options if o.id == option_id), None)


class Appropriateness(StrEnum):
    APPROPRIATE = "appropriate"
    APPROPRIATE_WITH_WARNING = "appropriate_with_warning"  # the weak pass
    NOT_APPROPRIATE = "not_appropriate"


class ClientCategory(StrEnum):
    RETAIL = "retail"
    PROFESSIONAL = "professional"  # elective professional, MiFID II Annex II section II


class ProfessionalCriterion(StrEnum):
    """MiFID II Annex II, II.1 (FCA COBS 3.5.3R): two of the three make an elective professional."""

    TRADING_FREQUENCY = "trading_frequency"  # >= 10 significant trades/quarter, last 4 quarters
    PORTFOLIO_SIZE = "portfolio_size"  # cash deposits and financial instruments > EUR 500,000
    SECTOR_EXPERIENCE = "sector_experience"  # >= 1 year in the financial sector, relevant role


class SourceOfFunds(StrEnum):
    SALARY = "salary"
    SAVINGS = "savings"
    BUSINESS_INCOME = "business_income"
    INVESTMENTS = "investments"
    INHERITANCE = "inheritance"
    OTHER = "other"


class DepositBand(StrEnum):
    """Expected deposits over a year, in the currency of the account (EUR, GBP or USD)."""

    UP_TO_10K = "up_to_10k"
    FROM_10K_TO_50K = "10k_50k"
    FROM_50K_TO_250K = "50k_250k"
    OVER_250K = "over_250k"

    @property
    def upper_bound(self) -> Decimal | None:
        """The most the band allows over a year; None for the open-ended top band."""
        return _BAND_UPPER_BOUNDS[self]


_BAND_UPPER_BOUNDS: dict[DepositBand, Decimal | None] = {
    DepositBand.UP_TO_10K: Decimal(10_000),
    DepositBand.FROM_10K_TO_50K: Decimal(50_000),
    DepositBand.FROM_50K_TO_250K: Decimal(250_000),
    DepositBand.OVER_250K: None,
}


def _knowledge(
    qid: str, text: str, correct: str, options: list[tuple[str, str]], explanation: str
) -> Question:
    """A knowledge question: 10 points for the correct option, an "I don't know" option last."""
    assert correct in {oid for oid, _ in options}
    return Question(
        id=qid,
        kind=QuestionKind.KNOWLEDGE,
        text=text,
        options=(
            *(
                AnswerOption(id=oid, text=t, points=10 if oid == correct else 0)
                for oid, t in options
            ),
            AnswerOption(id="dont_know", text="I don't know", points=0),
        ),
        explanation=explanation,
    )


def _yes_no(qid: str, text: str) -> Question:
    return Question(
        id=qid,
        kind=QuestionKind.PROFESSIONAL_CRITERION,
        text=text,
        options=(AnswerOption(id="yes", text="Yes"), AnswerOption(id="no", text="No")),
    )


QUESTIONS: tuple[Question, ...] = (
    _knowledge(
        "k_leverage",
        "You open a CFD position with leverage of 1:30. What does this mean?",
        "b",
        [
            ("a", "Your possible loss is limited to 1/30 of your deposit."),
            (
                "b",
                "You put up margin of about 1/30 (3.33%) of the position's value, but your profit"
                " or loss is on the full value of the position.",
            ),
            ("c", "The broker adds 30 times your deposit to your account as a bonus."),
        ],
        "Leverage multiplies exposure: a 1:30 position needs 3.33% of its value as margin, and a"
        " 3.33% price move against you loses the whole margin.",
    ),
    _knowledge(
        "k_margin_call",
        "What is a margin call?",
        "a",
        [
            (
                "a",
                "A warning that your equity has fallen close to the margin your open positions"
                " need: add funds or reduce your positions, or they may be closed.",
            ),
            ("b", "An offer from the broker to increase your leverage."),
            ("c", "A fee charged for every position kept open."),
        ],
        "A margin call warns that equity has fallen towards the margin the open positions need;"
        " if it keeps falling, positions are closed.",
    ),
    _knowledge(
        "k_stop_out",
        "Your account's margin level (equity / margin) falls to the stop-out level. What happens?",
        "c",
        [
            ("a", "Nothing: your positions stay open until you close them yourself."),
            ("b", "Your positions are frozen until prices recover."),
            (
                "c",
                "The broker starts closing your open positions at market prices, the most losing"
                " first, and the losses are realised.",
            ),
        ],
        "At the stop-out level open positions are closed automatically at market prices and the"
        " losses become final (for retail clients in the EU and UK: at 50% margin level at the"
        " latest).",
    ),
    _knowledge(
        "k_loss_beyond_margin",
        "You open a CFD position with EUR 500 of margin and the market moves sharply against you."
        " Which is true?",
        "b",
        [
            ("a", "You can never lose more than the EUR 500 of margin."),
            (
                "b",
                "Your loss can be larger than the EUR 500 of margin and can use up the whole"
                " balance of your account.",
            ),
            ("c", "You only lose money if you close the position yourself."),
        ],
        "A CFD loss is not limited to the margin put up: it can consume the whole account"
        " balance (negative balance protection stops it at zero for retail clients in the EU and"
        " UK).",
    ),
    _knowledge(
        "k_pnl",
        "You buy 1 lot of EURUSD (EUR 100,000) at 1.1000 and the price falls to 1.0950. What is"
        " your loss, before costs?",
        "c",
        [
            ("a", "USD 5"),
            ("b", "USD 50"),
            ("c", "USD 500"),
            ("d", "USD 5,000"),
        ],
        "Profit or loss is the price change times the position size: 0.0050 x 100,000 = USD 500.",
    ),
    _knowledge(
        "k_stop_loss_gap",
        "Does a stop-loss order guarantee the price at which your position is closed?",
        "a",
        [
            (
                "a",
                "No: in a fast market or when prices gap (for example over a weekend) it can be"
                " filled at a worse price.",
            ),
            ("b", "Yes, always at exactly the stop price."),
            ("c", "Yes, except for currency pairs."),
        ],
        "A stop-loss becomes a market order when hit: in a fast or gapping market it is filled at"
        " the next available price, which can be much worse (slippage).",
    ),
    Question(
        id="e_trades_12m",
        kind=QuestionKind.EXPERIENCE,
        text="How many leveraged trades (CFDs, FX on margin, spread bets) have you made in the"
        " last 12 months?",
        options=(
            AnswerOption(id="none", text="None", points=0),
            AnswerOption(id="1_10", text="1 to 10", points=8),
            AnswerOption(id="11_40", text="11 to 40", points=14),
            AnswerOption(id="over_40", text="More than 40", points=20),
        ),
    ),
    Question(
        id="e_years_trading",
        kind=QuestionKind.EXPERIENCE,
        text="For how long have you traded financial instruments (shares, bonds, funds,"
        " derivatives)?",
        options=(
            AnswerOption(id="never", text="Never", points=0),
            AnswerOption(id="under_1", text="Less than a year", points=3),
            AnswerOption(id="1_3", text="1 to 3 years", points=6),
            AnswerOption(id="over_3", text="More than 3 years", points=10),
        ),
    ),
    Question(
        id="e_education_profession",
        kind=QuestionKind.EXPERIENCE,
        text="Do you have education or professional experience relevant to leveraged products?",
        options=(
            AnswerOption(id="none", text="No", points=0),
            AnswerOption(
                id="education",
                text="A degree or professional qualification in finance, economics or a related"
                " field",
                points=5,
            ),
            AnswerOption(
                id="profession",
                text="I work or have worked in a role that needs knowledge of leveraged products"
                " or derivatives",
                points=10,
            ),
        ),
    ),
    _yes_no(
        "p_trade_frequency",
        "Over the last four quarters, have you carried out on average at least 10 transactions"
        " of significant size per quarter in leveraged products?",
    ),
    _yes_no(
        "p_portfolio",
        "Does your portfolio of financial instruments, cash deposits included, exceed EUR 500,000?",
    ),
    _yes_no(
        "p_financial_sector",
        "Have you worked in the financial sector for at least one year in a professional"
        " position that requires knowledge of leveraged products?",
    ),
    Question(
        id="f_source_of_funds",
        kind=QuestionKind.FINANCIAL_PROFILE,
        text="Where does the money you will trade with mainly come from?",
        options=(
            AnswerOption(id=SourceOfFunds.SALARY.value, text="Salary or pension"),
            AnswerOption(id=SourceOfFunds.SAVINGS.value, text="Savings"),
            AnswerOption(id=SourceOfFunds.BUSINESS_INCOME.value, text="Business income"),
            AnswerOption(id=SourceOfFunds.INVESTMENTS.value, text="Investments"),
            AnswerOption(id=SourceOfFunds.INHERITANCE.value, text="Inheritance or gift"),
            AnswerOption(id=SourceOfFunds.OTHER.value, text="Other"),
        ),
    ),
    Question(
        id="f_expected_deposits",
        kind=QuestionKind.FINANCIAL_PROFILE,
        text="How much do you expect to deposit over the next 12 months, in your account's"
        " currency?",
        options=(
            AnswerOption(id=DepositBand.UP_TO_10K.value, text="Up to 10,000"),
            AnswerOption(id=DepositBand.FROM_10K_TO_50K.value, text="10,000 to 50,000"),
            AnswerOption(id=DepositBand.FROM_50K_TO_250K.value, text="50,000 to 250,000"),
            AnswerOption(id=DepositBand.OVER_250K.value, text="More than 250,000"),
        ),
    ),
)

_BY_ID: dict[str, Question] = {q.id: q for q in QUESTIONS}

MAX_SCORE = sum(q.max_points for q in QUESTIONS)
KNOWLEDGE_MAX = sum(q.max_points for q in QUESTIONS if q.kind is QuestionKind.KNOWLEDGE)

# Outcome thresholds (score out of MAX_SCORE = 100, knowledge out of KNOWLEDGE_MAX = 60).
# Both conditions of a line must hold; the first line that holds decides.
PASS_SCORE = 70
PASS_KNOWLEDGE = 40  # at least 4 of the 6 knowledge questions right
WEAK_PASS_SCORE = 45
WEAK_PASS_KNOWLEDGE = 30  # at least 3 of the 6
WEAK_PASS_LEVERAGE_CAP = 10
# Refused to a weak pass: crypto CFDs, the most volatile class (ESMA's 2:1 class).
WEAK_PASS_REFUSED: tuple[AssetClass, ...] = (AssetClass.CRYPTO,)

WARNING_NOT_APPROPRIATE = (
    "Based on your answers, leveraged CFDs are not appropriate for you: you have not shown"
    " enough knowledge and experience of how they work and of their risks. CFDs are complex"
    " instruments and come with a high risk of losing money rapidly due to leverage. We cannot"
    " offer you a live account for leveraged trading."
)
WARNING_WEAK_PASS = (
    "Your answers show limited knowledge or experience of leveraged CFDs. CFDs are complex"
    " instruments and come with a high risk of losing money rapidly due to leverage. Your"
    f" leverage is limited to 1:{WEAK_PASS_LEVERAGE_CAP} and crypto CFDs are not available to"
    " you."
)


def question(question_id: str) -> Question:
    try:
        return _BY_ID[question_id]
    except KeyError:
        raise InvalidInput(
            f"{question_id!r} is not a question of questionnaire {QUESTIONNAIRE_VERSION}",
            field=f"answers.{question_id}",
        ) from None


class QuestionnaireAnswers(Frozen):
    """One filled-in questionnaire: question id -> option id, for every question."""

    version: str = QUESTIONNAIRE_VERSION
    answers: dict[str, str]


class AppropriatenessResult(Frozen):
    version: str
    score: int
    max_score: int
    knowledge_score: int
    knowledge_max: int
    outcome: Appropriateness
    # The highest account leverage the score allows; None when the score sets no cap of its own
    # (APPROPRIATE) or when no leveraged product is offered at all (NOT_APPROPRIATE: see
    # refused_products).
    leverage_cap: int | None
    refused_products: tuple[AssetClass, ...]
    warnings: tuple[str, ...]

    @property
    def refuses_leveraged_products(self) -> bool:
        return self.outcome is Appropriateness.NOT_APPROPRIATE


def _chosen(answers: QuestionnaireAnswers) -> dict[str, AnswerOption]:
    """Every question answered with one of its options, and nothing else; InvalidInput if not."""
    if answers.version != QUESTIONNAIRE_VERSION:
        raise InvalidInput(
            f"the answers are for questionnaire {answers.version!r}, not the current"
            f" {QUESTIONNAIRE_VERSION!r}",
            field="version",
        )
    chosen: dict[str, AnswerOption] = {}
    for q in QUESTIONS:
        if q.id not in answers.answers:
            raise InvalidInput(f"question {q.id!r} is not answered", field=f"answers.{q.id}")
        option = q.option(answers.answers[q.id])
        if option is None:
            raise InvalidInput(
                f"{answers.answers[q.id]!r} is not an option of question {q.id!r}",
                field=f"answers.{q.id}",
            )
        chosen[q.id] = option
    for qid in answers.answers:
        question(qid)  # an answer to a question that does not exist
    return chosen


def assess(answers: QuestionnaireAnswers) -> AppropriatenessResult:
    chosen = _chosen(answers)
    score = sum(chosen[q.id].points for q in QUESTIONS if q.scored)
    knowledge = sum(chosen[q.id].points for q in QUESTIONS if q.kind is QuestionKind.KNOWLEDGE)
    outcome = outcome_for(score, knowledge)
    explanations = tuple(
        q.explanation
        for q in QUESTIONS
        if q.kind is QuestionKind.KNOWLEDGE and chosen[q.id].points == 0
    )
    cap: int | None = None
    refused: tuple[AssetClass, ...] = ()
    warnings = explanations
    if outcome is Appropriateness.APPROPRIATE_WITH_WARNING:
        cap, refused = WEAK_PASS_LEVERAGE_CAP, WEAK_PASS_REFUSED
        warnings = (WARNING_WEAK_PASS, *explanations)
    elif outcome is Appropriateness.NOT_APPROPRIATE:
        refused = tuple(AssetClass)
        warnings = (WARNING_NOT_APPROPRIATE, *explanations)
    return AppropriatenessResult(
        version=QUESTIONNAIRE_VERSION,
        score=score,
        max_score=MAX_SCORE,
        knowledge_score=knowledge,
        knowledge_max=KNOWLEDGE_MAX,
        outcome=outcome,
        leverage_cap=cap,
        refused_products=refused,
        warnings=warnings,
    )


def outcome_for(score: int, knowledge_score: int) -> Appropriateness:
    if score >= PASS_SCORE and knowledge_score >= PASS_KNOWLEDGE:
        return Appropriateness.APPROPRIATE
    if score >= WEAK_PASS_SCORE and knowledge_score >= WEAK_PASS_KNOWLEDGE:
        return Appropriateness.APPROPRIATE_WITH_WARNING
    return Appropriateness.NOT_APPROPRIATE


def professional_criteria_met(answers: QuestionnaireAnswers) -> tuple[ProfessionalCriterion, ...]:
    """The elective-professional criteria the answers meet, in Annex II order.

    A "yes" that another answer contradicts does not count: ten trades a quarter over four
    quarters are more than 40 trades in 12 months, and a relevant role in the financial sector is
    relevant professional experience.
    """
    chosen = {qid: option.id for qid, option in _chosen(answers).items()}
    met: list[ProfessionalCriterion] = []
    if chosen["p_trade_frequency"] == "yes" and chosen["e_trades_12m"] == "over_40":
        met.append(ProfessionalCriterion.TRADING_FREQUENCY)
    if chosen["p_portfolio"] == "yes":
        met.append(ProfessionalCriterion.PORTFOLIO_SIZE)
    if chosen["p_financial_sector"] == "yes" and chosen["e_education_profession"] == "profession":
        met.append(ProfessionalCriterion.SECTOR_EXPERIENCE)
    return tuple(met)


def classify(answers: QuestionnaireAnswers, requested_professional: bool) -> ClientCategory:
    """RETAIL unless the client asked to be treated as professional and qualifies.

    MiFID II Annex II, II.1: on request, when at least two of the three criteria are met and the
    firm's assessment of the client's expertise, experience and knowledge gives reasonable
    assurance that they understand the risks; that assessment is this questionnaire, which must
    then be passed without warning (APPROPRIATE). The written request, the firm's written warning
    of the protections lost and the client's acknowledgement, and the evidence behind the
    criteria, are for the process around this rule.
    """
    result = assess(answers)
    if not requested_professional:
        return ClientCategory.RETAIL
    if (
        len(professional_criteria_met(answers)) >= 2
        and result.outcome is Appropriateness.APPROPRIATE
    ):
        return ClientCategory.PROFESSIONAL
    return ClientCategory.RETAIL


def source_of_funds(answers: QuestionnaireAnswers) -> SourceOfFunds:
    return SourceOfFunds(_chosen(answers)["f_source_of_funds"].id)


def expected_annual_deposits(answers: QuestionnaireAnswers) -> DepositBand:
    return DepositBand(_chosen(answers)["f_expected_deposits"].id)


def option_ids(question_id: str) -> tuple[str, ...]:
    return tuple(o.id for o in question(question_id).options)
