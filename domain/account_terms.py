"""What live MT5 account a client gets: its group, currency and leverage, and which leverage a
client may later ask for.

Leverage tables (maximum leverage per asset class, "30" meaning 1:30):

| class                       | EU/UK retail | broker table (EU/UK professional, all INTL) |
|-----------------------------|--------------|---------------------------------------------|
| FX_MAJOR                    | 30           | 500                                         |
| FX_MINOR_GOLD_MAJOR_INDEX   | 20           | 200                                         |
| COMMODITY_MINOR_INDEX       | 10           | 100                                         |
| EQUITY                      | 5            | 20                                          |
| CRYPTO                      | 2 (EU); not offered (UK) | 10                              |

EU retail: ESMA Decision (EU) 2018/796 (CFD product intervention, from 1 August 2018), since
2019 carried on by each national regulator's permanent measures with the same caps. UK retail:
FCA PS19/18 (the same caps, from 1 August 2019) and PS20/10 (no crypto-asset derivatives for
retail clients, from 6 January 2021). The broker table is our choice; professional clients in
the EU and UK and every client of the international entity get it.

How this maps to MT5: an account has one `Leverage`, and it is the FX-major leverage. The other
classes get their cap from the group's symbol margin settings: every CFD symbol of a live group
is set up in a leverage-dependent calculation mode (Forex or CFD Leverage) with an initial margin
rate of FX-major cap / class cap (`margin_rate_multipliers`; e.g. 1.5 for FX minors in
`real\\eu\\standard`, so 1:30 on the account is 1:20 on EURSEK). A lower account leverage (weak
pass, high risk, the client's own choice) therefore lowers every class by the same factor and can
never lift one above its cap. Symbols in a mode that ignores the account leverage (CFD, Exchange
Stocks) would not follow the account's cap and must not be used in live groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from domain.appropriateness import (
    Appropriateness,
    AppropriatenessResult,
    AssetClass,
    ClientCategory,
)
from domain.countries import Region
from domain.errors import BackOfficeError, InvalidInput
from domain.onboarding import AccountType
from domain.risk import RiskLevel

__all__ = [
    "BROKER_CAPS",
    "ESMA_RETAIL_CAPS",
    "HIGH_RISK_LEVERAGE_CAP",
    "LEVERAGE_LADDER",
    "LIVE_GROUPS",
    "UK_RETAIL_CAPS",
    "AccountType",
    "AssetClass",
    "LeverageDecision",
    "LiveAccountTerms",
    "LiveGroup",
    "ProductRefused",
    "Region",
    "account_leverage_cap",
    "check_account_type",
    "check_leverage_request",
    "group_currency",
    "leverage_caps",
    "live_group",
    "live_terms",
    "margin_rate_multipliers",
    "regulatory_leverage_cap",
    "terms_category",
]


class ProductRefused(BackOfficeError):
    """The client may not have this product (account type, leveraged CFDs) at all."""

    status_code = 403
    title = "Product refused"


class LeverageDecision(StrEnum):
    WITHIN_CAP = "within_cap"  # applied at once
    NEEDS_APPROVAL = "needs_approval"  # above the appropriateness/risk cap: compliance decides
    REFUSED = "refused"  # above the regulatory cap, or not a leverage MT5 accounts are given


# The leverages an account may have; anything else is refused.
LEVERAGE_LADDER: tuple[int, ...] = (1, 2, 5, 10, 20, 25, 30, 50, 100, 200, 300, 400, 500)

ESMA_RETAIL_CAPS: dict[AssetClass, int] = {
    AssetClass.FX_MAJOR: 30,
    AssetClass.FX_MINOR_GOLD_MAJOR_INDEX: 20,
    AssetClass.COMMODITY_MINOR_INDEX: 10,
    AssetClass.EQUITY: 5,
    AssetClass.CRYPTO: 2,
}
# FCA: the ESMA caps, and no crypto-asset derivatives at all for retail clients.
UK_RETAIL_CAPS: dict[AssetClass, int] = {
    cls: cap for cls, cap in ESMA_RETAIL_CAPS.items() if cls is not AssetClass.CRYPTO
}
BROKER_CAPS: dict[AssetClass, int] = {
    AssetClass.FX_MAJOR: 500,
    AssetClass.FX_MINOR_GOLD_MAJOR_INDEX: 200,
    AssetClass.COMMODITY_MINOR_INDEX: 100,
    AssetClass.EQUITY: 20,
    AssetClass.CRYPTO: 10,
}
# A HIGH-risk client's account leverage, whatever the region (it binds for INTL and for EU/UK
# professional clients; EU/UK retail are at 30 anyway).
HIGH_RISK_LEVERAGE_CAP = 100


@dataclass(frozen=True)
class LiveGroup:
    name: str
    region: Region
    account_type: AccountType
    high_risk: bool  # the "-hr" groups: monitored, for HIGH-risk clients
    currency: str


_CURRENCY: dict[Region, str] = {Region.EU: "EUR", Region.UK: "GBP", Region.INTL: "USD"}

LIVE_GROUPS: tuple[LiveGroup, ...] = (
    LiveGroup("real\\eu\\standard", Region.EU, AccountType.STANDARD, False, "EUR"),
    LiveGroup("real\\eu\\pro", Region.EU, AccountType.PRO, False, "EUR"),
    LiveGroup("real\\eu\\standard-hr", Region.EU, AccountType.STANDARD, True, "EUR"),
    LiveGroup("real\\eu\\pro-hr", Region.EU, AccountType.PRO, True, "EUR"),
    LiveGroup("real\\uk\\standard", Region.UK, AccountType.STANDARD, False, "GBP"),
    LiveGroup("real\\uk\\pro", Region.UK, AccountType.PRO, False, "GBP"),
    LiveGroup("real\\uk\\standard-hr", Region.UK, AccountType.STANDARD, True, "GBP"),
    LiveGroup("real\\uk\\pro-hr", Region.UK, AccountType.PRO, True, "GBP"),
    LiveGroup("real\\intl\\standard", Region.INTL, AccountType.STANDARD, False, "USD"),
    LiveGroup("real\\intl\\pro", Region.INTL, AccountType.PRO, False, "USD"),
    LiveGroup("real\\intl\\standard-hr", Region.INTL, AccountType.STANDARD, True, "USD"),
    LiveGroup("real\\intl\\pro-hr", Region.INTL, AccountType.PRO, True, "USD"),
)
_GROUPS: dict[str, LiveGroup] = {g.name: g for g in LIVE_GROUPS}


class LiveAccountTerms(BaseModel):
    model_config = ConfigDict(frozen=True)

    group: str
    leverage: int
    currency: str


def leverage_caps(region: Region, category: ClientCategory) -> dict[AssetClass, int]:
    """The highest leverage per asset class the rules allow; a class that is absent is not
    offered (crypto to UK retail clients). A new dict each call: change it freely."""
    if category is ClientCategory.RETAIL and region is Region.EU:
        return dict(ESMA_RETAIL_CAPS)
    if category is ClientCategory.RETAIL and region is Region.UK:
        return dict(UK_RETAIL_CAPS)
    return dict(BROKER_CAPS)


def regulatory_leverage_cap(region: Region, category: ClientCategory) -> int:
    """The highest account leverage (FX majors) the rules allow: above it, never."""
    return leverage_caps(region, category)[AssetClass.FX_MAJOR]


def margin_rate_multipliers(region: Region, category: ClientCategory) -> dict[AssetClass, Decimal]:
    """The initial margin rate of each class's symbols in the group: FX-major cap / class cap."""
    caps = leverage_caps(region, category)
    fx_major = Decimal(caps[AssetClass.FX_MAJOR])
    return {cls: fx_major / Decimal(cap) for cls, cap in caps.items()}


def terms_category(
    region: Region, category: ClientCategory, account_type: AccountType
) -> ClientCategory:
    """The category an account is run under.

    In the EU and UK the account type decides: a STANDARD account is run on retail terms whatever
    the client's category (a professional client may ask for retail protection, and one group's
    symbol margins cannot serve two tables), and a PRO account needs a PROFESSIONAL client
    (ProductRefused otherwise). The international entity has no such split.
    """
    check_account_type(region, category, account_type)
    if region is not Region.INTL and account_type is AccountType.STANDARD:
        return ClientCategory.RETAIL
    return category


def check_account_type(region: Region, category: ClientCategory, account_type: AccountType) -> None:
    if (
        region is not Region.INTL
        and account_type is AccountType.PRO
        and category is not ClientCategory.PROFESSIONAL
    ):
        raise ProductRefused(
            f"a {account_type.value} account in the {region.value} region is for professional"
            " clients only",
            field="account_type",
        )


def account_leverage_cap(
    region: Region,
    category: ClientCategory,
    appropriateness: AppropriatenessResult,
    risk: RiskLevel,
) -> int:
    """The highest leverage an account gets without a compliance decision.

    `category` is the category the account is run under (`terms_category`). The value is MT5's
    account `Leverage`, which is the FX-major leverage; every other class follows it through the
    group's symbol margin rates (see the module docstring). The lowest of: the regulatory cap, the
    appropriateness cap (1:10 for a weak pass) and, for a HIGH-risk client, 1:100. A failed
    appropriateness test refuses leveraged products outright (ProductRefused).
    """
    if appropriateness.outcome is Appropriateness.NOT_APPROPRIATE:
        raise ProductRefused(
            "leveraged CFDs are not appropriate for this client (appropriateness test failed)",
            field="appropriateness",
        )
    cap = regulatory_leverage_cap(region, category)
    if appropriateness.leverage_cap is not None:
        cap = min(cap, appropriateness.leverage_cap)
    if risk is RiskLevel.HIGH:
        cap = min(cap, HIGH_RISK_LEVERAGE_CAP)
    return cap


def live_group(region: Region, account_type: AccountType, risk: RiskLevel) -> str:
    suffix = "-hr" if risk is RiskLevel.HIGH else ""
    name = f"real\\{region.value}\\{account_type.value}{suffix}"
    assert name in _GROUPS, name
    return name


def group_currency(group: str) -> str:
    try:
        return _GROUPS[group].currency
    except KeyError:
        raise InvalidInput(f"{group!r} is not a live MT5 group", field="group") from None


def live_terms(
    region: Region,
    category: ClientCategory,
    account_type: AccountType,
    appropriateness: AppropriatenessResult,
    risk: RiskLevel,
) -> LiveAccountTerms:
    """The live account to open: its group, and the default leverage, which is the cap."""
    run_as = terms_category(region, category, account_type)
    group = live_group(region, account_type, risk)
    return LiveAccountTerms(
        group=group,
        leverage=account_leverage_cap(region, run_as, appropriateness, risk),
        currency=group_currency(group),
    )


def check_leverage_request(
    requested: int,
    region: Region,
    category: ClientCategory,
    account_type: AccountType,
    appropriateness: AppropriatenessResult,
    risk: RiskLevel,
) -> LeverageDecision:
    """What to do with a client's request for a new account leverage.

    Over the ladder, the decision only gets stricter as the request grows: WITHIN_CAP up to the
    account cap, NEEDS_APPROVAL up to the regulatory cap, REFUSED above it. A value that is not
    on the ladder, or any request from a client whose appropriateness test failed, is REFUSED.
    """
    if isinstance(requested, bool) or requested not in LEVERAGE_LADDER:
        return LeverageDecision.REFUSED
    if appropriateness.outcome is Appropriateness.NOT_APPROPRIATE:
        return LeverageDecision.REFUSED
    run_as = terms_category(region, category, account_type)
    if requested > regulatory_leverage_cap(region, run_as):
        return LeverageDecision.REFUSED
    if requested <= account_leverage_cap(region, run_as, appropriateness, risk):
        return LeverageDecision.WITHIN_CAP
    return LeverageDecision.NEEDS_APPROVAL
