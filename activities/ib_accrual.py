"""The CPU part of the commission accrual: one batch of logins' document computed by
`domain.ib` and its rows written as the commission ledger's COPY lines.

It runs in worker processes (`activities.ib_payout.accrue` keeps a pool of them for large
accruals), so it imports nothing but `domain` and is given plain, picklable values: the document
without its deals, and the deals as tuples in `DEAL_FIELDS` order.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from domain.errors import InvalidInput
from domain.ib.commissions import compute_values
from domain.ib.document import PreviewDocument
from domain.ib.rows import RowJson

# The deals' Web API fields, in the order `db.queries.ib.deals_for_accrual` answers them.
DEAL_FIELDS = (
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
    "ContractSize",
    "Digits",
)
_TIME, _DEAL = DEAL_FIELDS.index("Time"), DEAL_FIELDS.index("Deal")
LOGIN_AT = DEAL_FIELDS.index("Login")
BACKSLASH = "\\"


@dataclass(frozen=True)
class BatchRows:
    """A batch's rows, each as (deal, IB, COPY line of `LEDGER_COLUMNS` at revision 0); or the
    reason its document cannot be computed (`error`)."""

    rows: list[tuple[int, str, str]]
    unattributed: int
    without_account: int
    error: str | None = None


# The ledger's columns the lines carry, in COPY's order.
LEDGER_COLUMNS = (
    "server deal ib_id plan_id version revision level login symbol deal_time amount currency trace"
).split()


def copy_escape(value: str) -> str:
    """A value in COPY's text format (backslash, tab, newline and carriage return escaped)."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def copy_unescape(value: str) -> str:
    """The inverse of `copy_escape`."""
    out, chars, i = [], value, 0
    while i < len(chars):
        c = chars[i]
        if c == "\\" and i + 1 < len(chars):
            nxt = chars[i + 1]
            out.append({"t": "\t", "n": "\n", "r": "\r"}.get(nxt, nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def trace_of(line: str) -> str:
    """The ledger trace (`{"row": …, "adjustment": null}`) out of a COPY line made here."""
    return copy_unescape(line[:-1].rsplit("\t", 1)[1])


def batch_rows(
    server: str,
    document: dict[str, Any],
    deals: Sequence[Sequence[Any]],
    period_start: int,
) -> BatchRows:
    """`document` is the batch's what-if document without `symbols` and `deals` (its accounts
    are the logins BrokerFlow knows); the deals of other logins are counted, not computed. The
    symbols' terms come from the deals, the latest deal's where they differ."""
    accounts = document["accounts"]
    ordered = sorted(deals, key=lambda d: (d[_TIME], d[_DEAL]))
    kept = [dict(zip(DEAL_FIELDS, d, strict=True)) for d in ordered if d[LOGIN_AT] in accounts]
    without_account = sum(
        1 for d in ordered if d[LOGIN_AT] not in accounts and period_start <= d[_TIME]
    )
    symbols = {
        d["Symbol"]: {"contract_size": d["ContractSize"], "digits": d["Digits"]}
        for d in kept
        if d["Symbol"]
    }
    try:
        doc = PreviewDocument.model_validate(document | {"symbols": symbols, "deals": kept})
        values, unattributed = compute_values(doc)
    except (ValidationError, InvalidInput) as error:
        return BatchRows([], 0, without_account, error=str(error))
    head = copy_escape(server)
    text: dict[str, str] = {}

    def escaped(value: str) -> str:
        found = text.get(value)
        if found is None:
            found = text[value] = copy_escape(value)
        return found

    trace = RowJson()
    rows = [
        (
            r.deal,
            r.ib,
            f"{head}\t{r.deal}\t{r.ib}\t{escaped(r.plan)}\t{r.version}\t0\t{r.level}\t{r.login}"
            f"\t{escaped(r.symbol)}\t{r.time}\t{r.amount}\t{r.currency}"
            f'\t{{"row": {trace(r).replace(BACKSLASH, BACKSLASH * 2)}, "adjustment": null}}\n',
        )
        for r in values
    ]
    return BatchRows(rows, len(unattributed), without_account)


def worker_started() -> None:
    """A pool worker keeps few objects for long: the cyclic collector runs less often."""
    gc.set_threshold(50_000, 20, 100)
