"""Small what-if documents for the commission tests: one EURUSD client of a chain of IBs.

Everything a test does not name takes a default: EURUSD (contract 100,000, 5 digits, spread 12
points, so one lot's spread is 12 x 0.00001 x 100,000 = 12 USD), login 1001 in a USD account,
the period [T0, T0 + 7 days).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.ib.commissions import PreviewInput, compute
from domain.ib.rows import Row

T0 = 1767225600  # 2026-01-01 00:00:00 on the server's clock
LOGIN = 1001
SYMBOLS = {
    "EURUSD": {
        "contract_size": "100000",
        "digits": 5,
        "path": "Forex\\Majors\\EURUSD",
        "spread_points": "12",
        "markup_points": "4",
        "profit_currency": "USD",
    },
    "XAUUSD": {"contract_size": "100", "digits": 2, "path": "Metals\\XAUUSD"},
}


def per_lot(rate: str, **more: Any) -> dict[str, Any]:
    return {"basis": "per_lot", "rate": rate, **more}


def version(
    *rules: dict[str, Any], number: int = 1, start: int = T0, **more: Any
) -> dict[str, Any]:
    return {"version": number, "from": start, "currency": "USD", "rules": list(rules), **more}


def plan(*versions: dict[str, Any]) -> dict[str, Any]:
    return {"versions": list(versions)}


def chain(*plans: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """IBs L1 (the client's own) up to Ln, each on its own plan: (ibs, plans)."""
    ibs = {
        f"L{k}": {"parent": f"L{k + 1}" if k < len(plans) else None, "plan": f"p{k}"}
        for k in range(1, len(plans) + 1)
    }
    return ibs, {f"p{k}": p for k, p in enumerate(plans, start=1)}


def deal(
    ticket: int,
    time: int,
    entry: int,
    volume: int,
    price: str = "1.10000",
    position: int = 7001,
    **more: Any,
) -> dict[str, Any]:
    """A trade deal in Web API names; Action SELL unless `Action` is given."""
    fields: dict[str, Any] = {
        "Deal": str(ticket),
        "Login": str(LOGIN),
        "Time": time,
        "Symbol": "EURUSD",
        "Action": 1,
        "Entry": entry,
        "Volume": str(volume),
        "VolumeClosed": str(volume if entry in (1, 3) else 0),
        "Price": price,
        "PositionID": str(position),
        "PositionByID": "0",
        "Commission": "0",
        "Profit": "0",
    }
    return fields | more


def deposit(ticket: int, time: int, amount: str, login: int = LOGIN) -> dict[str, Any]:
    return {"Deal": ticket, "Login": login, "Time": time, "Action": 2, "Profit": amount}


def document(
    deals: list[dict[str, Any]],
    *plans: dict[str, Any],
    currency: str = "USD",
    **more: Any,
) -> PreviewInput:
    ibs, plan_map = chain(*plans)
    raw: dict[str, Any] = {
        "symbols": SYMBOLS,
        "accounts": {str(LOGIN): {"group": "real\\standard", "currency": currency}},
        "ibs": ibs,
        "plans": plan_map,
        "attribution": [{"login": LOGIN, "ib": "L1", "from": T0}],
        "rates": [],
        "deals": deals,
        "period": {"from": T0, "to": T0 + 7 * 86400},
    }
    return PreviewInput.model_validate(raw | more)


def rows(doc: PreviewInput) -> list[Row]:
    return compute(doc)[0]


def amounts(found: list[Row]) -> list[tuple[int, str, Decimal]]:
    """(deal, IB, amount) per row, in the order computed."""
    return [(r.deal, r.ib, r.amount) for r in found]
