"""The what-if document as given: symbols, accounts, the IB tree, plans, attribution, conversion
rates, MT5 deals in Web API field names and the period. Shape and cross-references are checked
here, so the calculation meets only a consistent document."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from decimal import Decimal
from enum import IntEnum, StrEnum
from fnmatch import fnmatchcase
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.errors import InvalidInput
from domain.money import MINOR_UNITS

LOT = 10000  # MT5 Web API volumes are in 1/10000 lot

Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
NonNegative = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
Seconds = Annotated[int, Field(ge=0)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Action(IntEnum):
    """The deal actions this calculation reads; every other action is ignored."""

    BUY = 0
    SELL = 1
    BALANCE = 2


class Entry(IntEnum):
    IN = 0
    OUT = 1
    INOUT = 2
    OUT_BY = 3


ENTRY_STATE = 255  # a state record, not an execution: read as no trade
# Plain ints for the checks made on every deal (an enum look-up costs more than the check).
_TRADE_ACTIONS = frozenset({int(Action.BUY), int(Action.SELL)})
_BALANCE = int(Action.BALANCE)
_ENTRIES = frozenset(int(e) for e in Entry)
_POINTS = {digits: Decimal(1).scaleb(-digits) for digits in range(11)}


class Symbol(Frozen):
    contract_size: Positive
    digits: Annotated[int, Field(ge=0, le=10)]
    path: str = ""
    spread_points: NonNegative | None = None
    markup_points: NonNegative | None = None
    profit_currency: Currency | None = None

    @property
    def point(self) -> Decimal:
        return _POINTS[self.digits]


class Account(Frozen):
    """An MT5 login: its group (plans match on it) and deposit currency (Commission, Profit)."""

    group: str
    currency: Currency


class IbNode(Frozen):
    parent: str | None = None
    plan: str


class Basis(StrEnum):
    PER_LOT = "per_lot"
    PER_DEAL = "per_deal"
    SPREAD_PERCENT = "spread_percent"
    COMMISSION_PERCENT = "commission_percent"
    CPA = "cpa"


class Rule(Frozen):
    """One rate of a plan. Masks use `*` and `?` as MT5 does; an empty list matches anything."""

    basis: Basis
    rate: NonNegative
    symbols: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    per_units: Positive | None = None
    of: Literal["spread", "markup"] = "spread"
    min_deposit: NonNegative = Decimal(0)

    @model_validator(mode="after")
    def _fields_fit_basis(self) -> Rule:
        if self.per_units is not None and self.basis is not Basis.PER_LOT:
            raise ValueError("per_units belongs to a per_lot rule")
        if self.basis is Basis.CPA and (self.symbols or self.paths):
            raise ValueError("a cpa rule pays on a deposit, it has no symbols or paths")
        if self.min_deposit and self.basis is not Basis.CPA:
            raise ValueError("min_deposit belongs to a cpa rule")
        return self

    def matches(self, group: str, symbol: str = "", path: str = "") -> bool:
        return (
            _any_mask(self.groups, group)
            and _any_mask(self.symbols, symbol)
            and _any_mask(self.paths, path)
        )


def _any_mask(masks: tuple[str, ...], value: str) -> bool:
    return not masks or any(fnmatchcase(value, mask) for mask in masks)


class Counting(StrEnum):
    ROUND_TURN = "round_turn"
    PER_SIDE = "per_side"


class Differential(Frozen):
    model: Literal["differential"] = "differential"


class Pool(Frozen):
    """Level 1 (the client's own IB) takes shares[0] of the pool, its parent shares[1], ..."""

    model: Literal["pool"]
    shares: Annotated[tuple[NonNegative, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _at_most_the_pool(self) -> Pool:
        if sum(self.shares) > 1:
            raise ValueError("pool shares add up to more than 1")
        return self


class PlanVersion(Frozen):
    version: int
    effective_from: int = Field(alias="from")
    currency: Currency
    payout_currency: Currency | None = None
    counting: Counting = Counting.ROUND_TURN
    tiers: Annotated[Differential | Pool, Field(discriminator="model")] = Differential()
    min_hold_seconds: Seconds = 0
    min_points: NonNegative = Decimal(0)
    rules: tuple[Rule, ...]

    @model_validator(mode="after")
    def _payout_currency_is_booked(self) -> PlanVersion:
        if self.payout not in MINOR_UNITS:
            raise ValueError(f"payout currency {self.payout} is not one BrokerFlow books")
        return self

    @property
    def payout(self) -> str:
        return self.payout_currency or self.currency


class Plan(Frozen):
    versions: Annotated[tuple[PlanVersion, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _versions_distinct(self) -> Plan:
        if len({v.version for v in self.versions}) != len(self.versions):
            raise ValueError("two versions share a number")
        if len({v.effective_from for v in self.versions}) != len(self.versions):
            raise ValueError("two versions take effect at the same time")
        return self

    def in_force(self, time: int) -> PlanVersion | None:
        started = [v for v in self.versions if v.effective_from <= time]
        return max(started, key=lambda v: v.effective_from) if started else None


class Attribution(Frozen):
    """`login` is `ib`'s client from `from` (inclusive) to `to` (exclusive, open when absent)."""

    login: int
    ib: str
    effective_from: int = Field(alias="from")
    until: int | None = Field(default=None, alias="to")

    def covers(self, time: int) -> bool:
        return self.effective_from <= time and (self.until is None or time < self.until)


class ConversionRate(Frozen):
    """1 `from` = `rate` `to`."""

    source: Currency = Field(alias="from")
    target: Currency = Field(alias="to")
    rate: Positive


class Deal(BaseModel):
    """An MT5 deal in Web API field names; the Web API's other fields are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    ticket: int = Field(alias="Deal")
    login: int = Field(alias="Login")
    time: int = Field(alias="Time")
    symbol: str = Field(default="", alias="Symbol")
    action: int = Field(alias="Action")
    entry: int = Field(default=0, alias="Entry")
    volume: int = Field(default=0, ge=0, alias="Volume")
    volume_closed: int = Field(default=0, ge=0, alias="VolumeClosed")
    price: Decimal = Field(default=Decimal(0), alias="Price", allow_inf_nan=False)
    position_id: int = Field(default=0, alias="PositionID")
    position_by_id: int = Field(default=0, alias="PositionByID")
    commission: Decimal = Field(default=Decimal(0), alias="Commission", allow_inf_nan=False)
    profit: Decimal = Field(default=Decimal(0), alias="Profit", allow_inf_nan=False)
    # The raw quote the deal was filled against (0: not given): a spread rule then pays the
    # spread (or markup) the deal captured instead of the symbol's fixed one.
    market_bid: Decimal = Field(default=Decimal(0), ge=0, alias="MarketBid", allow_inf_nan=False)
    market_ask: Decimal = Field(default=Decimal(0), ge=0, alias="MarketAsk", allow_inf_nan=False)

    @property
    def is_trade(self) -> bool:
        return self.action in _TRADE_ACTIONS and self.entry != ENTRY_STATE

    @property
    def is_deposit(self) -> bool:
        return self.action == _BALANCE and self.profit > 0

    @model_validator(mode="after")
    def _trade_is_whole(self) -> Deal:
        if not self.is_trade:
            return self
        if self.entry not in _ENTRIES:
            raise ValueError(f"deal {self.ticket}: Entry {self.entry} is not 0, 1, 2 or 3")
        if self.volume <= 0:
            raise ValueError(f"deal {self.ticket}: a trade needs a positive Volume")
        if self.entry == Entry.INOUT and not 0 < self.volume_closed < self.volume:
            raise ValueError(f"deal {self.ticket}: INOUT needs 0 < VolumeClosed < Volume")
        return self


class Period(Frozen):
    """[from, to) in the server's Unix seconds, cut into `length` pieces when one is given."""

    start: int = Field(alias="from")
    end: int = Field(alias="to")
    length: Literal["day", "week", "month"] | Annotated[int, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end <= self.start:
            raise ValueError("`to` must be after `from`")
        return self


_DEAL_FIELDS_SET = frozenset(Deal.model_fields)
_set = object.__setattr__


def _plain_deal(fields: dict[str, object]) -> Deal:
    """`Deal.model_construct(**fields)` given every field, made as it makes it (the instance's
    dict, its fields set, no extra, no private attributes) without its per-call overhead."""
    deal = Deal.__new__(Deal)
    _set(deal, "__dict__", fields)
    _set(deal, "__pydantic_fields_set__", set(_DEAL_FIELDS_SET))
    _set(deal, "__pydantic_extra__", None)
    _set(deal, "__pydantic_private__", None)
    return deal


# `PreviewDocument.with_plain_deals`' values, in its order: the Web API names of `Deal`'s fields.
PLAIN_DEAL_FIELDS = (
    "Deal",
    "Login",
    "Time",
    "Symbol",
    "Action",
    "Entry",
    "Volume",
    "VolumeClosed",
    "Price",
    "PositionID",
    "PositionByID",
    "Commission",
    "Profit",
)
# Optional after them: the deal's raw quote, as `Deal` reads it (0 when not given).
MARKET_DEAL_FIELDS = ("MarketBid", "MarketAsk")
_NO_QUOTE = Decimal(0)


class PreviewDocument(Frozen):
    symbols: dict[str, Symbol]
    accounts: dict[int, Account]
    ibs: dict[str, IbNode]
    plans: dict[str, Plan]
    attribution: tuple[Attribution, ...]
    rates: tuple[ConversionRate, ...] = ()
    deals: tuple[Deal, ...]
    period: Period

    @model_validator(mode="after")
    def _references_resolve(self) -> PreviewDocument:
        for name, node in self.ibs.items():
            if node.parent is not None and node.parent not in self.ibs:
                raise ValueError(f"IB {name}: parent {node.parent} is not in ibs")
            if node.plan not in self.plans:
                raise ValueError(f"IB {name}: plan {node.plan} is not in plans")
            self.chain(name)  # refuses a cycle
        for a in self.attribution:
            if a.ib not in self.ibs:
                raise ValueError(f"attribution of login {a.login}: IB {a.ib} is not in ibs")
        by_login = sorted(self.attribution, key=lambda a: (a.login, a.effective_from))
        for before, after in pairwise(by_login):
            if before.login == after.login and (
                before.until is None or before.until > after.effective_from
            ):
                raise ValueError(f"login {after.login} has overlapping attributions")
        tickets: set[int] = set()
        for deal in self.deals:
            if deal.ticket in tickets:
                raise ValueError(
                    f"deal {deal.ticket} appears twice: give a corrected deal only once"
                )
            tickets.add(deal.ticket)
            if deal.is_trade and deal.symbol not in self.symbols:
                raise ValueError(f"deal {deal.ticket}: symbol {deal.symbol!r} is not in symbols")
            if (deal.is_trade or deal.is_deposit) and deal.login not in self.accounts:
                raise ValueError(f"deal {deal.ticket}: login {deal.login} is not in accounts")
        return self

    def with_plain_deals(self, deals: Iterable[Sequence[object]]) -> PreviewDocument | None:
        """This document (validated without deals) with `deals` added, each the values of
        `PLAIN_DEAL_FIELDS` in that order (then, optionally, those of `MARKET_DEAL_FIELDS`),
        already of the model's types (ints, str, finite Decimals): made without validating each
        deal, after the same checks the model makes (`Deal`'s fields and `_trade_is_whole`,
        `_references_resolve`'s on deals). None when a deal fails one: validating the whole
        document then says why, as it always did."""
        made: list[Deal] = []
        tickets = {deal.ticket for deal in self.deals}
        symbols, accounts = self.symbols, self.accounts
        plain = len(PLAIN_DEAL_FIELDS)
        for values in deals:
            if len(values) == plain:
                bid: object = _NO_QUOTE
                ask: object = _NO_QUOTE
            else:
                bid, ask = values[plain:]
                values = values[:plain]
                if not (
                    type(bid) is Decimal
                    and type(ask) is Decimal
                    and bid.is_finite()
                    and ask.is_finite()
                    and bid >= 0
                    and ask >= 0
                ):
                    return None
            (ticket, login, time, symbol, action, entry, volume, closed, price, position,
             position_by, commission, profit) = values  # fmt: skip
            if not (
                type(ticket) is int
                and type(login) is int
                and type(time) is int
                and type(symbol) is str
                and type(action) is int
                and type(entry) is int
                and type(volume) is int
                and type(closed) is int
                and type(position) is int
                and type(position_by) is int
                and type(price) is Decimal
                and type(commission) is Decimal
                and type(profit) is Decimal
                and volume >= 0
                and closed >= 0
                and price.is_finite()
                and commission.is_finite()
                and profit.is_finite()
                and ticket not in tickets
            ):
                return None
            tickets.add(ticket)
            trade = action in _TRADE_ACTIONS and entry != ENTRY_STATE
            if trade and (
                entry not in _ENTRIES
                or volume <= 0
                or (entry == Entry.INOUT and not 0 < closed < volume)
                or symbol not in symbols
                or login not in accounts
            ):
                return None
            if action == _BALANCE and profit > 0 and login not in accounts:
                return None
            made.append(
                _plain_deal(
                    {
                        "ticket": ticket,
                        "login": login,
                        "time": time,
                        "symbol": symbol,
                        "action": action,
                        "entry": entry,
                        "volume": volume,
                        "volume_closed": closed,
                        "price": price,
                        "position_id": position,
                        "position_by_id": position_by,
                        "commission": commission,
                        "profit": profit,
                        "market_bid": bid,
                        "market_ask": ask,
                    }
                )
            )
        return self.model_copy(update={"deals": (*self.deals, *made)})

    def chain(self, ib: str) -> tuple[str, ...]:
        """`ib` and its ancestors, the client's own IB first (level 1)."""
        found = [ib]
        while (parent := self.ibs[found[-1]].parent) is not None:
            if parent in found:
                raise ValueError(f"the IB tree has a cycle through {parent}")
            found.append(parent)
        return tuple(found)

    def ib_of(self, login: int, time: int) -> str | None:
        return next((a.ib for a in self.attribution if a.login == login and a.covers(time)), None)

    def version_of(self, ib: str, time: int, deal: int) -> tuple[str, PlanVersion]:
        plan = self.ibs[ib].plan
        version = self.plans[plan].in_force(time)
        if version is None:
            raise InvalidInput(f"deal {deal}: plan {plan} of IB {ib} has no version in force")
        return plan, version

    def rate(self, source: str, target: str) -> Decimal:
        """How many `target` one `source` is worth; the document must give the pair."""
        if source == target:
            return Decimal(1)
        for r in self.rates:
            if (r.source, r.target) == (source, target):
                return r.rate
        raise InvalidInput(f"rates: no rate from {source} to {target}")


class Lookups:
    """The document's look-ups, made once per calculation instead of once per deal and level:
    each IB's chain, each plan's versions by `from` (the version in force is found by bisection),
    each login's attribution periods, the conversion rates by pair. Every answer and every error
    is the one `PreviewDocument`'s own methods give."""

    def __init__(self, doc: PreviewDocument) -> None:
        self.doc = doc
        self._chains: dict[str, tuple[str, ...]] = {}
        self._versions: dict[str, tuple[list[int], list[PlanVersion]]] = {}
        for name, plan in doc.plans.items():
            ordered = sorted(plan.versions, key=lambda v: v.effective_from)
            self._versions[name] = ([v.effective_from for v in ordered], ordered)
        self._attribution: dict[int, list[Attribution]] = {}
        for a in doc.attribution:
            self._attribution.setdefault(a.login, []).append(a)
        self._chain_versions: dict[
            tuple[str, ...], tuple[int, int, list[tuple[str, PlanVersion]]]
        ] = {}
        self._rates: dict[tuple[str, str], Decimal] = {}
        for r in doc.rates:
            self._rates.setdefault((r.source, r.target), r.rate)  # the first given wins

    def chain(self, ib: str) -> tuple[str, ...]:
        found = self._chains.get(ib)
        if found is None:
            found = self._chains[ib] = self.doc.chain(ib)
        return found

    def ib_of(self, login: int, time: int) -> str | None:
        for a in self._attribution.get(login, ()):
            if a.effective_from <= time and (a.until is None or time < a.until):  # `covers`
                return a.ib
        return None

    def version_of(self, ib: str, time: int, deal: int) -> tuple[str, PlanVersion]:
        plan = self.doc.ibs[ib].plan
        starts, versions = self._versions[plan]
        at = bisect_right(starts, time)
        if not at:
            raise InvalidInput(f"deal {deal}: plan {plan} of IB {ib} has no version in force")
        return plan, versions[at - 1]

    def chain_versions(
        self, chain: tuple[str, ...], time: int, deal: int
    ) -> list[tuple[str, PlanVersion]]:
        """`[version_of(ib, time, deal) for ib in chain]`: remembered per chain with the time
        span over which every level's version stays the one in force."""
        found = self._chain_versions.get(chain)
        if found is not None and found[0] <= time < found[1]:
            return found[2]
        versions = [self.version_of(ib, time, deal) for ib in chain]
        low, high = -(1 << 63), 1 << 63
        for ib in chain:
            starts = self._versions[self.doc.ibs[ib].plan][0]
            at = bisect_right(starts, time)
            low = max(low, starts[at - 1])
            if at < len(starts):
                high = min(high, starts[at])
        self._chain_versions[chain] = (low, high, versions)
        return versions

    def rate(self, source: str, target: str) -> Decimal:
        if source == target:
            return Decimal(1)
        found = self._rates.get((source, target))
        if found is None:
            raise InvalidInput(f"rates: no rate from {source} to {target}")
        return found
