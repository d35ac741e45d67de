"""The reporting pages' charts and the management report's PDF (docs/reporting.md).

Charts are inline SVG drawn here, on the server: the console page shows them as they are (no
script, nothing fetched: the console's content security policy stays as it is) and the PDF
embeds the same markup (WeasyPrint draws SVG). Three kinds: horizontal bars (revenue by symbol,
by group, by country), stacked bars (the revenue breakdown per day: positive parts stacked up
from the zero line, negative ones down) and lines (cumulative revenue per client of each
sign-up cohort by month since sign-up). Amounts arrive as `Decimal`; only the pixel geometry is
computed in floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from weasyprint import HTML

TEMPLATES = Path(__file__).parent / "templates"
_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), auto_reload=False
)

# Colour-blind-safe (Okabe-Ito) series colours.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")
FONT = "font-family:system-ui,sans-serif;font-size:11px"


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Decimal]


def _fmt(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):,}"


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" style="{FONT}" class="chart">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _legend(series: Sequence[Series], left: int, height: int) -> list[str]:
    """A swatch and the name of each series, in a row along the chart's foot."""
    parts, x = [], left
    for k, s in enumerate(series):
        parts.append(
            f'<rect x="{x}" y="{height - 12}" width="10" height="10" '
            f'fill="{PALETTE[k % len(PALETTE)]}"/>'
            f'<text x="{x + 14}" y="{height - 3}">{escape(s.name)}</text>'
        )
        x += 24 + 7 * len(s.name)
    return parts


def bar_chart(
    title: str, items: Sequence[tuple[str, Decimal]], *, unit: str, width: int = 640
) -> str:
    """Horizontal bars, one per item, from a zero line (negative values to its left), each
    labelled with its name and amount."""
    row, label_w, value_w = 22, 120, 110
    height = 30 + row * max(len(items), 1)
    plot = width - label_w - value_w
    low = min([Decimal(0), *(v for _, v in items)])
    high = max([Decimal(0), *(v for _, v in items)])
    span = float(high - low) or 1.0
    zero = label_w + plot * float(-low) / span
    body = [
        f'<text x="0" y="14" font-weight="600">{escape(title)} ({escape(unit)})</text>',
        f'<line x1="{zero:.1f}" y1="20" x2="{zero:.1f}" y2="{height}" stroke="#8a96a3"/>',
    ]
    if not items:
        body.append('<text x="0" y="40" fill="#68737f">no data in this range</text>')
    for i, (name, value) in enumerate(items):
        y = 24 + i * row
        length = plot * abs(float(value)) / span
        x = zero if value >= 0 else zero - length
        colour = PALETTE[0] if value >= 0 else PALETTE[3]
        body.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(name)}</text>'
            f'<rect class="bar" x="{x:.1f}" y="{y}" width="{max(length, 1):.1f}" '
            f'height="{row - 6}" fill="{colour}"><title>{escape(name)}: {_fmt(value)}</title>'
            f"</rect>"
            f'<text x="{width - 4}" y="{y + 13}" text-anchor="end">{_fmt(value)}</text>'
        )
    return _svg(width, height, title, body)


def stacked_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str,
    width: int = 640,
    height: int = 260,
) -> str:
    """Vertical stacked bars per category (a day): each series' positive part stacked up from
    the zero line, its negative part down; a legend names the series."""
    left, top, bottom, legend = 70, 24, 40, 18
    plot_h = height - top - bottom - legend
    plot_w = width - left - 10
    ups = [
        sum((max(s.values[i], Decimal(0)) for s in series), Decimal(0))
        for i in range(len(categories))
    ]
    downs = [
        sum((min(s.values[i], Decimal(0)) for s in series), Decimal(0))
        for i in range(len(categories))
    ]
    high = max([Decimal(0), *ups])
    low = min([Decimal(0), *downs])
    span = float(high - low) or 1.0
    scale = plot_h / span
    zero = top + float(high) * scale
    body = [
        f'<text x="0" y="14" font-weight="600">{escape(title)} ({escape(unit)})</text>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{_fmt(high)}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">{_fmt(low)}</text>',
    ]
    if not categories:
        body.append(f'<text x="{left}" y="{top + 30}" fill="#68737f">no data in this range</text>')
    slot = plot_w / max(len(categories), 1)
    bar_w = max(min(slot * 0.7, 40), 2)
    for i, category in enumerate(categories):
        x = left + i * slot + (slot - bar_w) / 2
        up, down = zero, zero
        for k, s in enumerate(series):
            value = s.values[i]
            size = abs(float(value)) * scale
            if value > 0:
                up -= size
                y = up
            elif value < 0:
                y = down
                down += size
            else:
                continue
            body.append(
                f'<rect class="segment" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{max(size, 0.5):.1f}" fill="{PALETTE[k % len(PALETTE)]}">'
                f"<title>{escape(category)} {escape(s.name)}: {_fmt(value)}</title></rect>"
            )
        if len(categories) <= 16 or i % max(len(categories) // 8, 1) == 0:
            body.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 14}" '
                f'text-anchor="middle">{escape(category[5:] if len(category) == 10 else category)}'
                f"</text>"
            )
    body.append(
        f'<line x1="{left}" y1="{zero:.1f}" x2="{width - 10}" y2="{zero:.1f}" stroke="#1d2733"/>'
    )
    body.extend(_legend(series, left, height))
    return _svg(width, height, title, body)


def line_chart(
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str,
    width: int = 640,
    height: int = 260,
) -> str:
    """One polyline per series over `x_labels` (a series may be shorter: a young cohort), with
    dots at the points and a legend."""
    left, top, bottom, legend = 70, 24, 34, 18
    plot_h = height - top - bottom - legend
    plot_w = width - left - 20
    values = [v for s in series for v in s.values]
    high = max([Decimal(0), *values])
    low = min([Decimal(0), *values])
    span = float(high - low) or 1.0
    step = plot_w / max(len(x_labels) - 1, 1)

    def y_of(value: Decimal) -> float:
        return top + (float(high) - float(value)) * plot_h / span

    zero = y_of(Decimal(0))
    body = [
        f'<text x="0" y="14" font-weight="600">{escape(title)} ({escape(unit)})</text>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{_fmt(high)}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">{_fmt(low)}</text>',
        f'<line x1="{left}" y1="{zero:.1f}" x2="{width - 20}" y2="{zero:.1f}" stroke="#8a96a3"/>',
    ]
    if not series:
        body.append(f'<text x="{left}" y="{top + 30}" fill="#68737f">no data in this range</text>')
    for i, label in enumerate(x_labels):
        body.append(
            f'<text x="{left + i * step:.1f}" y="{top + plot_h + 14}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    for k, s in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        points = [(left + i * step, y_of(v)) for i, v in enumerate(s.values)]
        body.append(
            f'<polyline class="line" fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}"/>'
        )
        body.extend(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{escape(s.name)} '
            f"{escape(x_labels[i])}: {_fmt(s.values[i])}</title></circle>"
            for i, (x, y) in enumerate(points)
        )
    body.extend(_legend(series, left, height))
    return _svg(width, height, title, body)


def render_report_html(context: dict[str, Any]) -> str:
    return _ENV.get_template("analytics_report.html").render(**context)


def render_report_pdf(context: dict[str, Any]) -> bytes:
    """The management report as a PDF (A4 landscape): the charts and every report's table."""
    pdf = HTML(string=render_report_html(context), base_url=str(TEMPLATES)).write_pdf()
    assert pdf is not None
    return bytes(pdf)
