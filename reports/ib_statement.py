"""An IB's payout statement as a PDF: the payout, the plan versions used, totals per client
(MT5 login), per symbol and per level, and every row with its calculation trace, so a disputed
amount is answered from the statement itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from weasyprint import HTML

TEMPLATES = Path(__file__).parent / "templates"
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


@dataclass(frozen=True)
class Statement:
    payout_id: str
    ib_name: str
    ib_id: str
    period: str
    currency: str
    status: str
    lines: Sequence[StatementLine]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))


def _totals(lines: Sequence[StatementLine], key: str) -> list[tuple[object, Decimal, int]]:
    sums: dict[object, tuple[Decimal, int]] = {}
    for line in lines:
        amount, count = sums.get(getattr(line, key), (Decimal(0), 0))
        sums[getattr(line, key)] = (amount + line.amount, count + 1)
    return [
        (k, amount, count) for k, (amount, count) in sorted(sums.items(), key=lambda i: str(i[0]))
    ]


def render_html(statement: Statement) -> str:
    return _ENV.get_template("ib_statement.html").render(
        s=statement,
        plans=sorted({(line.plan, line.version) for line in statement.lines}),
        by_client=_totals(statement.lines, "login"),
        by_symbol=_totals(statement.lines, "symbol"),
        by_level=_totals(statement.lines, "level"),
    )


def render_statement(statement: Statement) -> bytes:
    """The statement as PDF bytes (CPU-bound: run it off the event loop)."""
    pdf: bytes | None = HTML(string=render_html(statement)).write_pdf()
    assert pdf is not None
    return pdf
