"""The JSON form of an `Exposure`: decimals as strings, money rounded once, half up, to its
currency's minor unit (2 decimals for a currency BrokerFlow does not book), lots exact,
utilisation to 6 decimals. Sums are made before rounding, so a bucket can differ from the sum
of its rounded parts by a cent."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from domain.exposure.compute import AccountMargin, Exposure, Figures, GroupMargin, House
from domain.money import MINOR_UNITS

_RATIO = Decimal("0.000001")
_PERCENT = Decimal("0.01")


def exact(value: Decimal) -> str:
    """Exact, without trailing zeros or exponent: 1.5, 100, 0."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def money(value: Decimal, currency: str) -> str:
    quantum = Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))
    rounded = value.quantize(quantum, ROUND_HALF_UP)
    return format(rounded + 0, "f")  # + 0 turns -0.00 into 0.00


def ratio(value: Decimal | None) -> str | None:
    return None if value is None else format(value.quantize(_RATIO, ROUND_HALF_UP), "f")


def figures(f: Figures, currency: str) -> dict[str, Any]:
    return {
        "long_lots": exact(f.long_lots),
        "short_lots": exact(f.short_lots),
        "net_lots": exact(f.net_lots),
        "gross_lots": exact(f.gross_lots),
        "long_notional": money(f.long_notional, currency),
        "short_notional": money(f.short_notional, currency),
        "net_notional": money(f.net_notional, currency),
        "gross_notional": money(f.gross_notional, currency),
        "pending": {
            "buy_lots": exact(f.pending_buy_lots),
            "sell_lots": exact(f.pending_sell_lots),
            "buy_notional": money(f.pending_buy_notional, currency),
            "sell_notional": money(f.pending_sell_notional, currency),
        },
        "margin": money(f.margin, currency),
    }


def house(h: House, currency: str) -> dict[str, Any]:
    return {
        "client_net_lots": exact(h.client_net_lots),
        "a_book_net_lots": exact(h.a_book_net_lots),
        "b_book_net_lots": exact(h.b_book_net_lots),
        "coverage_net_lots": exact(h.coverage_net_lots),
        "house_net_lots": exact(h.house_net_lots),
        "client_net_notional": money(h.client_net_notional, currency),
        "a_book_net_notional": money(h.a_book_net_notional, currency),
        "b_book_net_notional": money(h.b_book_net_notional, currency),
        "coverage_net_notional": money(h.coverage_net_notional, currency),
        "house_net_notional": money(h.house_net_notional, currency),
    }


def account(a: AccountMargin, currency: str) -> dict[str, Any]:
    terms = a.account
    own = terms.currency
    level = None if not a.margin else terms.equity / a.margin * 100
    return {
        "login": terms.login,
        "group": terms.group,
        "country": terms.country,
        "region": terms.region,
        "book": terms.book.value,
        "a_share": exact(terms.a_share),
        "hedging": terms.hedging,
        "leverage": terms.leverage,
        "currency": own,
        "equity": money(terms.equity, own),
        "margin": money(a.margin, own),
        "margin_positions": money(a.margin_positions, own),
        "margin_pending": money(a.margin_pending, own),
        "utilisation": ratio(a.utilisation),
        "margin_level": None
        if level is None
        else format(level.quantize(_PERCENT, ROUND_HALF_UP), "f"),
        "margin_reporting": money(a.margin_reporting, currency),
        "equity_reporting": money(a.equity_reporting, currency),
    }


def group(g: GroupMargin, currency: str) -> dict[str, Any]:
    return {
        "accounts": g.accounts,
        "margin": money(g.margin, currency),
        "equity": money(g.equity, currency),
        "utilisation": ratio(g.utilisation),
    }


def report(e: Exposure) -> dict[str, Any]:
    c = e.currency
    net = sum((h.house_net_notional for h in e.house.values()), Decimal(0))
    absolute = sum((abs(h.house_net_notional) for h in e.house.values()), Decimal(0))
    return {
        "currency": c,
        "total": figures(e.total, c),
        "by_symbol": {k: figures(v, c) for k, v in e.by_symbol.items()},
        "by_group": {k: figures(v, c) for k, v in e.by_group.items()},
        "by_country": {k: figures(v, c) for k, v in e.by_country.items()},
        "by_region": {k: figures(v, c) for k, v in e.by_region.items()},
        "by_book": {k: figures(v, c) for k, v in e.by_book.items()},
        "house": {
            "by_symbol": {k: house(v, c) for k, v in e.house.items()},
            "net_notional": money(net, c),
            "absolute_notional": money(absolute, c),
        },
        "accounts": [account(a, c) for a in e.accounts],
        "groups": {k: group(v, c) for k, v in e.groups.items()},
    }
