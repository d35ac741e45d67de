"""The CPU part of the commission accrual: one batch of logins' document computed by
`domain.ib` and its rows written as the commission ledger's COPY lines.

It runs in worker processes (`activities.ib_payout.accrue` keeps a pool of them for large
accruals), so it imports nothing but `domain` and is given plain, picklable values: the document
without its deals, and the deals as tuples in `ACCRUAL_FIELDS` (or `DEAL_FIELDS`) order.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from domain.errors import InvalidInput
from domain.ib.commissions import compute_ledger
from domain.ib.document import MARKET_DEAL_FIELDS, PLAIN_DEAL_FIELDS, PreviewDocument
from domain.ib.rows import RowJson

# A deal's Web API fields the workers read, in this order, optionally followed by its raw quote
# (`MARKET_DEAL_FIELDS`): `ACCRUAL_FIELDS`, as `db.queries.ib.deals_for_accrual` answers them.
DEAL_FIELDS = (*PLAIN_DEAL_FIELDS, "ContractSize", "Digits")
ACCRUAL_FIELDS = (*DEAL_FIELDS, *MARKET_DEAL_FIELDS)
_TIME, _DEAL = DEAL_FIELDS.index("Time"), DEAL_FIELDS.index("Deal")
_SYMBOL = DEAL_FIELDS.index("Symbol")
_CONTRACT_SIZE, _DIGITS = DEAL_FIELDS.index("ContractSize"), DEAL_FIELDS.index("Digits")
_PLAIN = len(PLAIN_DEAL_FIELDS)
_WITH_TERMS = len(DEAL_FIELDS)
LOGIN_AT = DEAL_FIELDS.index("Login")
# The document's key for the server's ingested symbol terms (path, fixed spread, profit
# currency: `db.queries.trading.symbol_terms`), merged into the symbols the deals give.
SYMBOL_TERMS = "symbol_terms"


@dataclass(frozen=True)
class BatchRows:
    """A batch's rows, each as (deal, IB, COPY line of `LEDGER_COLUMNS` at revision 0, its
    `trace` a reference: `STORED_COLUMNS`), the trace templates the references name (key →
    template); or the reason its document cannot be computed (`error`)."""

    rows: list[tuple[int, str, str]]
    unattributed: int
    without_account: int
    error: str | None = None
    templates: dict[str, str] = field(default_factory=dict)


# The ledger's columns the lines carry, in COPY's order.
LEDGER_COLUMNS = (
    "server deal ib_id plan_id version revision level login symbol deal_time amount currency trace"
).split()
# The columns a line made by `batch_rows` is COPYed to: its last field is the row's trace by
# reference (`trace_ref`: the template's key, the direct IB, `volume_why`), not the whole trace.
STORED_COLUMNS = [*LEDGER_COLUMNS[:-1], "trace_ref"]
KEY_LENGTH = 32  # a template's key: 128 bits of BLAKE2b, in hex (a uuid's digits)
# `trace_ref` is the key, the direct IB's length in 3 digits, the direct IB, then `volume_why`.
SIZE_DIGITS = 3


def template_key(template: str) -> str:
    return hashlib.blake2b(template.encode(), digest_size=KEY_LENGTH // 2).hexdigest()


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


# Templates this process made or was given (`remember_templates`), for `trace_of`.
_TEMPLATES: dict[str, str] = {}
_TEMPLATES_KEPT = 100_000


def remember_templates(templates: dict[str, str]) -> None:
    if len(_TEMPLATES) + len(templates) > _TEMPLATES_KEPT:
        _TEMPLATES.clear()
    _TEMPLATES.update(templates)


def row_of(columns: dict[str, str], reference: str, template: str) -> dict[str, Any]:
    """A row's trace (`Row`'s JSON as a dict, its keys in `Row`'s order) from its columns (as
    COPY text), its reference and its template: what the ledger's `trace` reads back."""
    tail = json.loads(template)
    row: dict[str, Any] = {
        "deal": int(columns["deal"]),
        "login": int(columns["login"]),
        "time": int(columns["deal_time"]),
        "symbol": copy_unescape(columns["symbol"]),
        "ib": columns["ib_id"],
        "level": int(columns["level"]),
    }
    size_at = KEY_LENGTH + SIZE_DIGITS
    direct_end = size_at + int(reference[KEY_LENGTH:size_at])
    row["direct_ib"] = reference[size_at:direct_end]
    for key, value in tail.items():
        row[key] = value
        if key == "volume":
            row["volume_why"] = reference[direct_end:]
    return row


def trace_of(line: str, templates: dict[str, str] | None = None) -> str:
    """The ledger trace (`{"row": …, "adjustment": null}`) of a COPY line made here: the
    line's reference completed with its template (from `templates`, else one this process
    made or was given)."""
    fields = line[:-1].split("\t")
    value = copy_unescape(fields[-1])
    if value.startswith("{"):
        return value
    template = (templates or _TEMPLATES)[value[:KEY_LENGTH]]
    row = row_of(dict(zip(LEDGER_COLUMNS, fields, strict=True)), value, template)
    return f'{{"row": {json.dumps(row, ensure_ascii=False)}, "adjustment": null}}'


def _document(
    document: dict[str, Any], symbols: dict[str, Any], kept: list[Sequence[Any]]
) -> PreviewDocument:
    """The batch's document: validated without its deals, which are added after the model's
    own checks on plain values (`with_plain_deals`); a deal those refuse (or a document that is
    not valid) is validated whole, as it always was, so the error is the model's."""
    try:
        base = PreviewDocument.model_validate(document | {"symbols": symbols, "deals": []})
        doc = base.with_plain_deals((*d[:_PLAIN], *d[_WITH_TERMS:]) for d in kept)
    except (ValidationError, InvalidInput):
        doc = None
    if doc is None:
        deals = [dict(zip(ACCRUAL_FIELDS[: len(d)], d, strict=True)) for d in kept]
        doc = PreviewDocument.model_validate(document | {"symbols": symbols, "deals": deals})
    return doc


def batch_rows(
    server: str,
    document: dict[str, Any],
    deals: Sequence[Sequence[Any]],
    period_start: int,
) -> BatchRows:
    """`document` is the batch's what-if document without `symbols` and `deals` (its accounts
    are the logins BrokerFlow knows) and with the server's `SYMBOL_TERMS`; the deals of other
    logins are counted, not computed. A symbol's contract size and digits come from the deals
    (the latest deal's where they differ), its path, spread and profit currency from the
    ingested symbol list."""
    document = dict(document)
    terms: dict[str, dict[str, Any]] = document.pop(SYMBOL_TERMS, {})
    accounts = document["accounts"]
    ordered = sorted(deals, key=lambda d: (d[_TIME], d[_DEAL]))
    kept = [d for d in ordered if d[LOGIN_AT] in accounts]
    without_account = sum(
        1 for d in ordered if d[LOGIN_AT] not in accounts and period_start <= d[_TIME]
    )
    symbols = {
        d[_SYMBOL]: {
            "contract_size": d[_CONTRACT_SIZE],
            "digits": d[_DIGITS],
            **terms.get(d[_SYMBOL], {}),
        }
        for d in kept
        if d[_SYMBOL]
    }
    try:
        doc = _document(document, symbols, kept)
        values, unattributed = compute_ledger(doc)
    except (ValidationError, InvalidInput) as error:
        return BatchRows([], 0, without_account, error=str(error))
    head = copy_escape(server)
    text: dict[str, str] = {}

    def escaped(value: str) -> str:
        found = text.get(value)
        if found is None:
            found = text[value] = copy_escape(value)
        return found

    write = RowJson()
    templates: dict[str, str] = {}
    # Per tail (one object for every row priced alike, kept alive by `values`): the line's
    # columns it gives and its template's key.
    tails: dict[int, tuple[str, str]] = {}
    sized: dict[str, str] = {}  # a direct IB with its length before it

    def direct(ib: str) -> str:
        found = sized.get(ib)
        if found is None:
            found = sized[ib] = f"{len(ib):0{SIZE_DIGITS}d}{escaped(ib)}"
        return found

    if any(len(ib) >= 10**SIZE_DIGITS for ib in {r.direct_ib for r in values}):
        return BatchRows([], 0, without_account, error="an IB id is 1,000 characters or more")
    rows = []
    for r in values:
        tail = r.tail
        middle = tails.get(id(tail))
        if middle is None:
            template = write.tail(tail)
            key = template_key(template)
            templates[key] = template
            middle = tails[id(tail)] = (
                f"{escaped(tail.plan)}\t{tail.version}\t0\t",
                f"\t{tail.amount}\t{tail.currency}\t{key}",
            )
        plan, rest = middle
        rows.append(
            (
                r.deal,
                r.ib,
                f"{head}\t{r.deal}\t{r.ib}\t{plan}{r.level}\t{r.login}\t{escaped(r.symbol)}"
                f"\t{r.time}{rest}{direct(r.direct_ib)}{escaped(r.volume_why)}\n",
            )
        )
    remember_templates(templates)
    return BatchRows(rows, len(unattributed), without_account, templates=templates)


def worker_started() -> None:
    """A pool worker keeps few objects for long: the cyclic collector runs less often."""
    gc.set_threshold(50_000, 20, 100)
