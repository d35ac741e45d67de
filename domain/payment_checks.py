"""The checks a deposit passes before it reaches the client, and a withdrawal before it leaves.

A check that fails does not refuse the money: it holds the deposit for a compliance officer
(or sends the withdrawal to finance's four-eyes approval), with the reasons written down as
risk flags.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from decimal import Decimal
from enum import StrEnum

from domain.errors import InvalidInput
from domain.frozen import Frozen
from domain.money import Money


class RiskFlag(StrEnum):
    KYC_NOT_APPROVED = "kyc_not_approved"
    SANCTIONS_HIT = "sanctions_hit"
    PAYER_NAME_MISMATCH = "payer_name_mismatch"
    DAILY_LIMIT = "daily_limit"
    VELOCITY = "velocity"
    AMOUNT_DIFFERS = "amount_differs"  # a bank transfer for another amount than announced
    LARGE_AMOUNT = "large_amount"


class KycStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ScreeningStatus(StrEnum):
    UNSCREENED = "unscreened"
    CLEAR = "clear"
    HIT = "hit"


class DepositFacts(Frozen):
    """What the checks look at, gathered from the books at the time of the check."""

    amount: Money
    requested: Money
    kyc: KycStatus
    screening: ScreeningStatus
    client_name: str
    payer_name: str  # "" when the processor does not report one
    deposited_last_24h: Decimal  # in the deposit's currency, this deposit excluded
    deposits_last_hour: int  # this deposit excluded


class PaymentLimits(Frozen):
    min_amount: Decimal
    max_amount: Decimal
    daily_deposit_limit: Decimal
    max_deposits_per_hour: int
    payer_name_min_score: int
    auto_approve_withdrawal_up_to: Decimal


class Assessment(Frozen):
    flags: tuple[RiskFlag, ...]

    @property
    def held(self) -> bool:
        return bool(self.flags)


def check_amount_within(amount: Money, low: Decimal, high: Decimal, what: str) -> None:
    """Refuse at the door what no check could ever let through."""
    if amount.amount <= 0 or not amount.is_exact():
        raise InvalidInput(
            f"{amount.amount} {amount.currency} is not a positive amount in whole minor units",
            field="amount",
        )
    if not low <= amount.amount <= high:
        raise InvalidInput(
            f"a {what} must be between {low} and {high} {amount.currency}", field="amount"
        )


def assess_deposit(facts: DepositFacts, limits: PaymentLimits) -> Assessment:
    flags: list[RiskFlag] = []
    if facts.kyc is not KycStatus.APPROVED:
        flags.append(RiskFlag.KYC_NOT_APPROVED)
    if facts.screening is ScreeningStatus.HIT:
        flags.append(RiskFlag.SANCTIONS_HIT)
    if facts.payer_name and (
        name_match_score(facts.payer_name, facts.client_name) < limits.payer_name_min_score
    ):
        flags.append(RiskFlag.PAYER_NAME_MISMATCH)
    if facts.deposited_last_24h + facts.amount.amount > limits.daily_deposit_limit:
        flags.append(RiskFlag.DAILY_LIMIT)
    if facts.deposits_last_hour + 1 > limits.max_deposits_per_hour:
        flags.append(RiskFlag.VELOCITY)
    if facts.amount != facts.requested:
        flags.append(RiskFlag.AMOUNT_DIFFERS)
    if facts.amount.amount > limits.max_amount:
        flags.append(RiskFlag.LARGE_AMOUNT)
    return Assessment(flags=tuple(flags))


class WithdrawalFacts(Frozen):
    amount: Money
    kyc: KycStatus
    screening: ScreeningStatus
    client_name: str
    beneficiary_name: str


def assess_withdrawal(facts: WithdrawalFacts, limits: PaymentLimits) -> Assessment:
    """Any flag sends the withdrawal to two different finance officers (four-eyes)."""
    flags: list[RiskFlag] = []
    if facts.kyc is not KycStatus.APPROVED:
        flags.append(RiskFlag.KYC_NOT_APPROVED)
    if facts.screening is ScreeningStatus.HIT:
        flags.append(RiskFlag.SANCTIONS_HIT)
    if name_match_score(facts.beneficiary_name, facts.client_name) < limits.payer_name_min_score:
        flags.append(RiskFlag.PAYER_NAME_MISMATCH)  # paying a third party
    if facts.amount.amount > limits.auto_approve_withdrawal_up_to:
        flags.append(RiskFlag.LARGE_AMOUNT)
    return Assessment(flags=tuple(flags))


# Four-eyes: this many different finance officers approve a flagged withdrawal.
APPROVALS_NEEDED = 2


def name_match_score(a: str, b: str) -> int:
    """0-100: how alike two personal names are, whatever their order, case and accents.

    "MÜLLER, Jürgen" and "Jurgen Muller" score 100; a different surname scores well below 85.
    """
    left, right = _name_tokens(a), _name_tokens(b)
    if not left or not right:
        return 0
    return round(100 * difflib.SequenceMatcher(None, left, right).ratio())


def _name_tokens(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name.casefold())
    ascii_only = "".join(c for c in folded if not unicodedata.combining(c))
    return " ".join(sorted(re.findall(r"[a-z0-9]+", ascii_only)))
