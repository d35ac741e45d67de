"""The trading aggregate's questions, as the ingestion stored MT5's answers: a server's symbols
and its pending orders (risk exposure reads both)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models.trading import OpenOrderRow, SymbolRow


async def symbols_of(session: AsyncSession, server: str) -> Sequence[SymbolRow]:
    """Every symbol of `server` as its last complete listing showed it, by name."""
    result = await session.scalars(
        select(SymbolRow).where(SymbolRow.server == server).order_by(SymbolRow.symbol)
    )
    return result.all()


async def symbol_terms(session: AsyncSession, server: str) -> dict[str, dict[str, Any]]:
    """What the IB calculation needs of each symbol beyond a deal's own fields: its path (rules
    by symbol group), its fixed spread in points (0 in MT5 is a floating spread: unknown, left
    out) and its profit currency."""
    rows = await session.execute(
        select(SymbolRow.symbol, SymbolRow.path, SymbolRow.spread, SymbolRow.currency_profit).where(
            SymbolRow.server == server
        )
    )
    terms: dict[str, dict[str, Any]] = {}
    for symbol, path, spread, profit_currency in rows:
        found: dict[str, Any] = {"path": path}
        if spread > 0:
            found["spread_points"] = spread
        if len(profit_currency) == 3 and profit_currency.isalpha() and profit_currency.isupper():
            found["profit_currency"] = profit_currency
        terms[symbol] = found
    return terms


async def symbol_of(session: AsyncSession, server: str, symbol: str) -> SymbolRow | None:
    """One symbol of `server`, or None when the last listing did not have it."""
    return await session.get(SymbolRow, (server, symbol))


async def open_orders_of(
    session: AsyncSession, server: str, *, login: int | None = None
) -> Sequence[OpenOrderRow]:
    """The pending orders of `server` (of `login` only, when given) open at the last snapshot,
    by ticket."""
    query = select(OpenOrderRow).where(OpenOrderRow.server == server)
    if login is not None:
        query = query.where(OpenOrderRow.login == login)
    result = await session.scalars(query.order_by(OpenOrderRow.order_ticket))
    return result.all()
