"""The live view's series point and its alert rules (issue 15), pure.

`summarise` turns one `Exposure` into the point the series stores (decimals as strings, money
rounded to the reporting currency's minor unit): the total and the buckets by symbol, group,
region and book, each group's margin utilisation and the house's net notional.

`metric_value` reads one figure of a point for a threshold:

* `net_notional`: |net notional| of the bucket;
* `gross_notional`: gross notional of the bucket;
* `concentration`: |net notional| of the bucket / the sum of |net notional| over the buckets
  of the same scope (none for `total`);
* `margin_utilisation`: margin / equity of an account (its login as the key), of a group, or
  of all accounts for `total` (none for symbol, region and book);
* `change`: |net notional now - net notional of the earlier point| (the newest point at or
  before now - the threshold's window).

`transition` is the hysteresis: an alert is raised when the value goes above `raise_above`
and cleared when it falls below `clear_below` (<= raise_above); in between nothing changes, so
a figure hovering around one line does not raise and clear on every point.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from domain.exposure.compute import Exposure, Figures
from domain.exposure.market import ZERO
from domain.exposure.report import exact, money, ratio

TOTAL_KEY = "*"


class Scope(StrEnum):
    TOTAL = "total"
    SYMBOL = "symbol"
    GROUP = "group"
    REGION = "region"
    BOOK = "book"
    ACCOUNT = "account"  # one MT5 login (margin utilisation only)


class Metric(StrEnum):
    NET_NOTIONAL = "net_notional"
    GROSS_NOTIONAL = "gross_notional"
    CONCENTRATION = "concentration"
    MARGIN_UTILISATION = "margin_utilisation"
    CHANGE = "change"


class Transition(StrEnum):
    RAISE = "raise"  # not raised, value above raise_above
    CLEAR = "clear"  # raised, value below clear_below
    HOLD = "hold"  # raised, still at or above clear_below (or no value this time)
    QUIET = "quiet"  # not raised, at or below raise_above (or no value)


@dataclass(frozen=True, slots=True)
class Rule:
    raise_above: Decimal
    clear_below: Decimal

    def __post_init__(self) -> None:
        if self.clear_below > self.raise_above:
            raise ValueError("clear_below must not be above raise_above (hysteresis)")


def transition(rule: Rule, value: Decimal | None, raised: bool) -> Transition:
    """What one new value does to one key's alert, `raised` = its alert is raised now."""
    if raised:
        if value is not None and value < rule.clear_below:
            return Transition.CLEAR
        return Transition.HOLD
    if value is not None and value > rule.raise_above:
        return Transition.RAISE
    return Transition.QUIET


_BUCKETS = {
    Scope.SYMBOL: "by_symbol",
    Scope.GROUP: "by_group",
    Scope.REGION: "by_region",
    Scope.BOOK: "by_book",
}


def _bucket(f: Figures, currency: str) -> dict[str, str]:
    return {
        "long_lots": exact(f.long_lots),
        "short_lots": exact(f.short_lots),
        "net_lots": exact(f.net_lots),
        "long_notional": money(f.long_notional, currency),
        "short_notional": money(f.short_notional, currency),
        "net_notional": money(f.net_notional, currency),
        "gross_notional": money(f.gross_notional, currency),
        "pending_notional": money(f.pending_buy_notional + f.pending_sell_notional, currency),
        "margin": money(f.margin, currency),
    }


def summarise(e: Exposure) -> dict[str, Any]:
    """The series point of one calculation (JSON-ready)."""
    c = e.currency
    margin = sum((g.margin for g in e.groups.values()), ZERO)
    equity = sum((g.equity for g in e.groups.values()), ZERO)
    house = sum((h.house_net_notional for h in e.house.values()), ZERO)
    return {
        "currency": c,
        "total": _bucket(e.total, c),
        "by_symbol": {k: _bucket(v, c) for k, v in e.by_symbol.items()},
        "by_group": {k: _bucket(v, c) for k, v in e.by_group.items()},
        "by_region": {k: _bucket(v, c) for k, v in e.by_region.items()},
        "by_book": {k: _bucket(v, c) for k, v in e.by_book.items()},
        "groups": {
            k: {
                "margin": money(g.margin, c),
                "equity": money(g.equity, c),
                "utilisation": ratio(g.utilisation),
            }
            for k, g in e.groups.items()
        },
        "margin": money(margin, c),
        "equity": money(equity, c),
        "utilisation": ratio(margin / equity if equity > 0 else None),
        "house_net_notional": money(house, c),
    }


def account_utilisations(e: Exposure, logins: Collection[str]) -> dict[str, str | None]:
    """Margin / equity of the accounts named by `logins` (login numbers as text) that the
    calculation has, each in its deposit currency (6 decimals; None when equity is not above
    0). Only those asked for: a point stores the accounts a threshold watches, not every one."""
    return {
        str(a.account.login): ratio(a.utilisation)
        for a in e.accounts
        if str(a.account.login) in logins
    }


def _net(point: dict[str, Any], scope: Scope, key: str) -> Decimal | None:
    if scope is Scope.ACCOUNT:
        return None
    if scope is Scope.TOTAL:
        return Decimal(point["total"]["net_notional"])
    bucket = point[_BUCKETS[scope]].get(key)
    return None if bucket is None else Decimal(bucket["net_notional"])


def metric_value(
    point: dict[str, Any],
    scope: Scope,
    key: str,
    metric: Metric,
    earlier: dict[str, Any] | None = None,
) -> Decimal | None:
    """`metric` of the `scope` bucket `key` in `point` (see the table above); None when the
    point has no such figure (the bucket is empty, or the metric means nothing for the scope).
    An absent bucket is an empty one for the notional metrics: nothing is held there."""
    if metric is Metric.MARGIN_UTILISATION:
        if scope is Scope.TOTAL:
            found = point.get("utilisation")
        elif scope is Scope.GROUP:
            found = point["groups"].get(key, {}).get("utilisation")
        elif scope is Scope.ACCOUNT:
            found = point.get("accounts", {}).get(key)
        else:
            return None
        return None if found is None else Decimal(found)
    if scope is Scope.ACCOUNT:
        return None  # an account is watched for its margin utilisation only
    if metric is Metric.CHANGE:
        if earlier is None:
            return None
        return abs((_net(point, scope, key) or ZERO) - (_net(earlier, scope, key) or ZERO))
    if metric is Metric.NET_NOTIONAL:
        return abs(_net(point, scope, key) or ZERO)
    if metric is Metric.GROSS_NOTIONAL:
        if scope is Scope.TOTAL:
            return Decimal(point["total"]["gross_notional"])
        bucket = point[_BUCKETS[scope]].get(key)
        return ZERO if bucket is None else Decimal(bucket["gross_notional"])
    # Concentration: this bucket's share of the scope's absolute net notional.
    if scope is Scope.TOTAL:
        return None
    buckets = point[_BUCKETS[scope]]
    whole = sum((abs(Decimal(b["net_notional"])) for b in buckets.values()), ZERO)
    if whole == 0:
        return None
    return abs(_net(point, scope, key) or ZERO) / whole
