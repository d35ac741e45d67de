"""An IB's payout statement as a PDF: the payout, the plan versions used, totals per client
(MT5 login), per symbol and per level, and every row with its calculation trace, so a disputed
amount is answered from the statement itself.

Rendering is WeasyPrint's layout, all Python and CPU-bound. What it costs and what is done
about it (profiled with cProfile; figures in docs/ib-payouts.md, "Not done"):

* the stylesheet (`templates/ib_statement.css`) is parsed once per process, with one
  `FontConfiguration`, and handed to every render instead of a `<style>` parsed each time;
* elements are matched against a minimal user-agent sheet (`templates/ib_statement_ua.css`)
  instead of WeasyPrint's full HTML5 one (about 200 rules tried on every element);
* the CSS avoids what WeasyPrint lays out or paints slowly: collapsed borders and per-cell
  borders (zebra rows instead), web fonts;
* `render_statements` renders many in a process pool, one process per core, and
  `render_statement(..., pooled=True)` sends one render there, so concurrent renders in a
  server use every core instead of sharing one GIL.
"""

from __future__ import annotations

import atexit
import json
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TypeVar

from jinja2 import Environment, FileSystemLoader, select_autoescape
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration

T = TypeVar("T")

TEMPLATES = Path(__file__).parent / "templates"
STYLESHEET = TEMPLATES / "ib_statement.css"
UA_STYLESHEET = TEMPLATES / "ib_statement_ua.css"
_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), auto_reload=False
)


@dataclass(frozen=True)
class StatementLine:
    """One ledger row: a deal's commission (or a later adjustment of it) with its trace."""

    deal: int
    time: str
    login: int
    symbol: str
    level: int
    plan: str
    version: int
    volume: str
    volume_why: str
    calculation: str
    amount: Decimal
    adjustment: bool


class FraudFlagLike(Protocol):
    """What the statement reads of a stored fraud flag (`db.models.ib.IbFraudFlag`)."""

    @property
    def rule(self) -> str: ...
    @property
    def evidence_key(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def evidence(self) -> dict[str, Any]: ...
    @property
    def detected_at(self) -> datetime: ...


@dataclass(frozen=True)
class StatementFlag:
    """An open fraud flag of the IB when the statement was rendered, for finance's section."""

    rule: str
    evidence_key: str
    detail: str
    evidence: str
    detected: str

    @classmethod
    def of(cls, flag: FraudFlagLike) -> StatementFlag:
        return cls(
            rule=flag.rule,
            evidence_key=flag.evidence_key,
            detail=flag.detail,
            evidence="; ".join(
                f"{key}: {value if isinstance(value, str | int) else json.dumps(value)}"
                for key, value in sorted(flag.evidence.items())
            ),
            detected=flag.detected_at.strftime("%Y-%m-%d %H:%M UTC"),
        )


@dataclass(frozen=True)
class Statement:
    payout_id: str
    ib_name: str
    ib_id: str
    period: str
    currency: str
    status: str
    lines: Sequence[StatementLine]
    # The IB's open fraud flags at rendering, in a last section for finance (none: no section);
    # stored flags are read into `StatementFlag`s here, so what is pickled to the pool is plain.
    fraud_flags: Sequence[StatementFlag | FraudFlagLike] = ()

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "fraud_flags",
            tuple(
                f if isinstance(f, StatementFlag) else StatementFlag.of(f) for f in self.fraud_flags
            ),
        )

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))


@dataclass(frozen=True)
class StatementCopies:
    """A statement's two PDFs: finance's (with its section for finance) and the IB's."""

    finance: bytes
    ib: bytes


def _totals(lines: Sequence[StatementLine], key: str) -> list[tuple[object, Decimal, int]]:
    sums: dict[object, tuple[Decimal, int]] = {}
    for line in lines:
        amount, count = sums.get(getattr(line, key), (Decimal(0), 0))
        sums[getattr(line, key)] = (amount + line.amount, count + 1)
    return [
        (k, amount, count) for k, (amount, count) in sorted(sums.items(), key=lambda i: str(i[0]))
    ]


def render_finance_html(statement: Statement) -> str | None:
    """The section for finance (the IB's open fraud flags), a document appended to the
    statement's pages; None without flags."""
    if not statement.fraud_flags:
        return None
    return _ENV.get_template("ib_statement_finance.html").render(s=statement)


def render_html(statement: Statement) -> str:
    """The statement's HTML; its look is `STYLESHEET`, applied when the PDF is rendered."""
    return _ENV.get_template("ib_statement.html").render(
        s=statement,
        plans=sorted({(line.plan, line.version) for line in statement.lines}),
        by_client=_totals(statement.lines, "login"),
        by_symbol=_totals(statement.lines, "symbol"),
        by_level=_totals(statement.lines, "level"),
    )


class _Renderer:
    """What every render in a process shares: one font configuration, the parsed stylesheets."""

    def __init__(self) -> None:
        self.fonts = FontConfiguration()
        self.stylesheet = CSS(filename=str(STYLESHEET), font_config=self.fonts)
        self.ua_stylesheet = CSS(filename=str(UA_STYLESHEET), font_config=self.fonts)

    def _html(self, html: str) -> _StatementHTML:
        document = _StatementHTML(string=html, base_url=str(TEMPLATES))
        document.ua_stylesheet = self.ua_stylesheet
        return document

    def copies(self, html: str, finance_html: str | None) -> StatementCopies:
        """Finance's copy and the IB's from one layout: the statement's pages written alone
        (the IB's), and with the section for finance appended (finance's; the same bytes when
        there is no section)."""
        statement = self._html(html).render(stylesheets=[self.stylesheet], font_config=self.fonts)
        ib_copy = statement.write_pdf()
        assert ib_copy is not None
        if finance_html is None:
            return StatementCopies(finance=ib_copy, ib=ib_copy)
        finance = self._html(finance_html).render(
            stylesheets=[self.stylesheet], font_config=self.fonts
        )
        both = statement.copy([*statement.pages, *finance.pages]).write_pdf()
        assert both is not None
        return StatementCopies(finance=both, ib=ib_copy)

    def pdf(self, html: str, finance_html: str | None = None) -> bytes:
        """The statement's pages, then (when given) the section for finance laid out as a
        document of its own, so each counts its own pages."""
        pdf: bytes | None
        if finance_html is None:
            pdf = self._html(html).write_pdf(stylesheets=[self.stylesheet], font_config=self.fonts)
        else:
            statement, finance = (
                self._html(h).render(stylesheets=[self.stylesheet], font_config=self.fonts)
                for h in (html, finance_html)
            )
            pdf = statement.copy([*statement.pages, *finance.pages]).write_pdf()
        assert pdf is not None
        return pdf


class _StatementHTML(HTML):  # type: ignore[misc]  # WeasyPrint ships no type hints
    """WeasyPrint's HTML with the statement's minimal user-agent sheet, overriding
    `_ua_stylesheets` as WeasyPrint's own test suite does for its lighter one (`FakeHTML`). It
    is not public API: tests/ib_payout/test_statement_pdf.py renders the statement through
    stock `HTML` as well and compares the pages, so a WeasyPrint change here shows there."""

    ua_stylesheet: CSS

    def _ua_stylesheets(self, forms: bool = False) -> list[CSS]:
        return [self.ua_stylesheet]

    def _ph_stylesheets(self) -> list[CSS]:
        return []


# One renderer per thread: a Pango font map is not safe to share between threads, and the
# activity renders from `asyncio.to_thread` (several statements at a time).
_renderers = threading.local()


def _shared_renderer() -> _Renderer:
    renderer: _Renderer | None = getattr(_renderers, "renderer", None)
    if renderer is None:
        renderer = _renderers.renderer = _Renderer()
    return renderer


def _render_pdf(statement: Statement) -> bytes:
    return _shared_renderer().pdf(render_html(statement), render_finance_html(statement))


def _render_copies(statement: Statement) -> StatementCopies:
    return _shared_renderer().copies(render_html(statement), render_finance_html(statement))


def render_statement_copies(statement: Statement, *, pooled: bool = False) -> StatementCopies:
    """Finance's copy (with the section for finance when the statement has open fraud flags)
    and the IB's copy (the statement's pages only, never the section: it is not cut out of
    finance's copy but written without it), from one layout. `pooled` as `render_statement`."""
    if pooled:
        return _submit(lambda pool: pool.submit(_render_copies, statement).result())
    return _render_copies(statement)


def render_statement(statement: Statement, *, pooled: bool = False) -> bytes:
    """The statement as PDF bytes (CPU-bound: run it off the event loop).

    `pooled`: render in the shared process pool (see `render_statements`), blocking the calling
    thread until it is done; called from `asyncio.to_thread`, concurrent renders then use every
    core instead of sharing this process's GIL.
    """
    if pooled:
        return _submit(lambda pool: pool.submit(_render_pdf, statement).result())
    return _render_pdf(statement)


def render_statements(statements: Iterable[Statement], *, chunk: int = 4) -> list[bytes]:
    """The statements' PDFs, in their order, rendered in the shared process pool (one process
    per core), `chunk` statements per task to keep the hand-over cheap."""
    return _submit(lambda pool: list(pool.map(_render_pdf, statements, chunksize=chunk)))


def pool_workers() -> int:
    """Processes in the pool: the cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _worker_start() -> None:
    """A pool process loads WeasyPrint's fonts and the stylesheets before its first statement."""
    _shared_renderer()


def _submit(call: Callable[[ProcessPoolExecutor], T]) -> T:
    """`call` with the shared pool, started on first use. Its processes are spawned, not forked:
    a fork of a server's process (Temporal's worker threads, an event loop) is not safe. A pool
    whose process died is dropped, so the next render (an activity's retry) starts a new one."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=pool_workers(),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_start,
            )
        pool = _pool
    try:
        return call(pool)
    except BrokenProcessPool:
        with _pool_lock:
            if _pool is pool:
                _pool = None
        raise


def shutdown_pool() -> None:
    """Stops the pool's processes (a later render starts new ones)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_pool)
