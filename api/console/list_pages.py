"""The shape the console's list pages share, written once: the query parameters a list takes
(filters as the forms send them, a search, the page, the last action's messages), a filter's
value read as its enum, a query's rows a page at a time with their total, and the render call
that hands a template the page, the filters as chosen, their choices and the messages.

A list page is then: take `listing: Listing` and its own filters (`Filter`), read them with
`choice`, ask its lookup (which pages with `paged`), and `render_list` with its rows. Used by
the finance console (`api.console.routes`, `api.finance.console`) and the compliance console
(`api.console.compliance`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement

from api.console.schemas import Paging
from api.pages import render
from api.policy import Principal

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")
PAGE_SIZES = (10, 25, 50, 100)
# No control characters: the database refuses NUL in text, and no filter value has any.
NO_CONTROLS = r"^[^\x00-\x1f\x7f]*$"

# Text, not enums: a filter form sends `status=` for "any"; an unknown value is no filter.
Filter = Annotated[str, Query(max_length=32, pattern=NO_CONTROLS)]
Search = Annotated[str, Query(max_length=100, pattern=NO_CONTROLS)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
PageSize = Annotated[int, Query(ge=1, le=100)]
# The notice or error a form's redirect brings back (`api.pages.back`).
Message = Annotated[str, Query(max_length=500)]


@dataclass(frozen=True)
class ListQuery:
    """What every list page is asked besides its filters: the search (stripped), the page,
    and the last action's notice or error."""

    q: str
    offset: int
    limit: int
    notice: str
    error: str


def list_query(
    q: Search = "",
    offset: Offset = 0,
    limit: PageSize = 25,
    notice: Message = "",
    error: Message = "",
) -> ListQuery:
    return ListQuery(q=q.strip(), offset=offset, limit=limit, notice=notice, error=error)


# A list page's route takes `listing: Listing` for `?q=&offset=&limit=&notice=&error=`.
Listing = Annotated[ListQuery, Depends(list_query)]


def choice(enum: type[E], value: str) -> E | None:
    """A filter's value as its enum; "" (the form's "any") or an unknown value is no filter."""
    return next((member for member in enum if member.value == value), None)


async def paged(
    session: AsyncSession,
    query: Select[tuple[T]],
    order: tuple[ColumnElement[Any] | QueryableAttribute[Any], ...],
    *,
    limit: int,
    offset: int,
) -> tuple[list[T], Paging]:
    """`query`'s rows in `order`, `limit` of them from `offset`, and the page with the total
    the query has."""
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = list(await session.scalars(query.order_by(*order).limit(limit).offset(offset)))
    return rows, Paging(offset=offset, limit=limit, shown=len(rows), total=int(total or 0))


def render_list(
    request: Request,
    name: str,
    staff: Principal,
    listing: ListQuery,
    paging: Paging,
    *,
    filters: Mapping[str, StrEnum | None] | None = None,
    choices: Mapping[str, type[StrEnum]] | None = None,
    **context: object,
) -> HTMLResponse:
    """A list page: its template gets `paging`, each filter's chosen value under its name (""
    for any), each filter's choices as a list of values, the search `q` as it was typed, the
    page sizes, the messages and the rest of `context` (the rows, the people they name)."""
    chosen = {key: value.value if value else "" for key, value in (filters or {}).items()}
    lists = {key: [member.value for member in enum] for key, enum in (choices or {}).items()}
    return render(
        request,
        name,
        staff,
        paging=paging,
        q=listing.q,
        page_sizes=PAGE_SIZES,
        notice=listing.notice,
        error=listing.error,
        **chosen,
        **lists,
        **context,
    )
