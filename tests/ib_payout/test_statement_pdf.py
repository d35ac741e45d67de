"""A rendered statement, checked page by page as images (poppler's pdftoppm) and as text
(pdftotext): the page count its rows need, every page laid out where it should be (the
summary and breakdowns on the first, the rows' header repeated on top of the others, white
margins, the page number bottom right), every row on exactly one page, adjustments in italics,
and pages identical, pixel for pixel, to stock WeasyPrint's render of the same HTML and
stylesheet (the renderer's minimal UA sheet and shared state change nothing one can see), in
this process as in the process pool."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image, ImageChops
from weasyprint import CSS, HTML

from api.ib.payouts_service import FINANCE_SECTION_TITLE
from reports.ib_statement import (
    STYLESHEET,
    Statement,
    StatementFlag,
    StatementLine,
    render_html,
    render_statement,
    render_statements,
    shutdown_pool,
)
from storage.pdf_pages import without_trailing_section

pytestmark = pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
    reason="poppler-utils (pdftoppm, pdftotext) is not installed",
)

ROWS = 60
# 60 rows of two lines at 8.5 pt on A4 landscape, after the summary and three breakdowns: the
# first page holds 3 rows, the next ones 21 each. A layout change that moves this is seen here.
PAGES = 4
DPI = 40


def line(deal: int, level: int = 1, adjustment: bool = False) -> StatementLine:
    return StatementLine(
        deal=deal,
        time="2026-01-01 00:16:40",
        login=1000 + deal % 7,
        symbol=("EURUSD", "XAUUSD", "")[deal % 3],
        level=level,
        plan="direct",
        version=1,
        volume="0.4",
        volume_why="OUT: 0.40 closed; round turn counts closes: 0.40",
        calculation="per_lot rule 0: 0.4 x 4 = 1.6 (0.40 lots); own 1.6, capped 1.6, below 0"
        " → earned 1.6 USD = 1.60 USD",
        amount=Decimal("-1.60") if adjustment else Decimal("1.60"),
        adjustment=adjustment,
    )


def statement(rows: int) -> Statement:
    return Statement(
        payout_id="5b0e2c1e-0000-4000-8000-000000000001",
        ib_name="Direct IB",
        ib_id="5b0e2c1e-0000-4000-8000-000000000002",
        period="2026-01-01 00:00 to 2026-01-08 00:00 (end excluded)",
        currency="USD",
        status="statement_ready",
        lines=[line(i, level=1 + i % 3, adjustment=i == rows - 1) for i in range(rows)],
    )


def pages(pdf: bytes, directory: Path) -> list[Image.Image]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "statement.pdf").write_bytes(pdf)
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            str(DPI),
            str(directory / "statement.pdf"),
            str(directory / "p"),
        ],
        check=True,
        timeout=60,
    )
    return [Image.open(p).convert("L") for p in sorted(directory.glob("p-*.png"))]


def page_texts(pdf: bytes, directory: Path) -> list[str]:
    """Each page's text, as pdftotext reads it (form feeds between pages)."""
    (directory / "text.pdf").write_bytes(pdf)
    out = subprocess.run(
        ["pdftotext", "-layout", str(directory / "text.pdf"), "-"],
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    return out.split("\f")[:-1]


def share(image: Image.Image, box: tuple[float, float, float, float], low: int, high: int) -> float:
    """The share of pixels with a grey level in [low, high] in `box` (left, top, right, bottom
    as fractions of the page)."""
    width, height = image.size
    left, top, right, bottom = box
    region = image.crop(
        (int(width * left), int(height * top), int(width * right), int(height * bottom))
    )
    histogram = region.histogram()
    return sum(histogram[low : high + 1]) / (region.size[0] * region.size[1])


def ink(image: Image.Image, box: tuple[float, float, float, float]) -> float:
    return share(image, box, 0, 127)


def header_band_top(image: Image.Image) -> float | None:
    """Where (fraction of the height) the first pixel row that is mostly the header's grey
    (#d9d9d9, 217) is, across the table's width; None if no row is."""
    width, height = image.size
    left, right = int(width * 0.06), int(width * 0.94)
    for y in range(height):
        row = image.crop((left, y, right, y + 1)).histogram()
        if sum(row[205:230]) > 0.5 * (right - left):
            return y / height
    return None


@pytest.fixture(scope="module")
def long_pdf() -> bytes:
    return render_statement(statement(ROWS))


@pytest.fixture(scope="module")
def long_pages(long_pdf: bytes, tmp_path_factory: pytest.TempPathFactory) -> list[Image.Image]:
    return pages(long_pdf, tmp_path_factory.mktemp("long"))


def test_each_page_of_a_long_statement_is_laid_out_where_it_should_be(
    long_pages: list[Image.Image],
) -> None:
    assert len(long_pages) == PAGES
    for number, image in enumerate(long_pages, start=1):
        width, height = image.size
        # A4 landscape: 297 x 210 mm.
        assert abs(width / height - 297 / 210) < 0.01, f"page {number} is not A4 landscape"
        # The 12 mm side margins and the 14 mm top margin stay white (4 % and 6.6 %).
        for margin in ((0.0, 0.0, 0.035, 1.0), (0.965, 0.0, 1.0, 1.0), (0.0, 0.0, 1.0, 0.06)):
            assert ink(image, margin) == 0, f"page {number} has ink in its margin {margin}"
        # "page N of M" bottom right (about 0.35 % of that corner at 40 dpi), nothing bottom left.
        assert ink(image, (0.8, 0.93, 0.965, 1.0)) > 0.001, f"page {number} has no page number"
        assert ink(image, (0.035, 0.93, 0.5, 1.0)) == 0
        # Text all the way down the table area: not a blank or half-drawn page (the sparsest
        # band, the first page's breakdowns, has 0.6 % ink; a full rows band 2 %).
        bottom = 0.85 if number < len(long_pages) else 0.25
        for top in (0.07, 0.25, 0.45, 0.65):
            if top < bottom:
                band = (0.04, top, 0.96, min(top + 0.18, bottom))
                assert ink(image, band) > 0.003, f"page {number} is blank in {band}"
        # The rows' grey header row: low on the first page (after the summary and the three
        # breakdowns, each with its own header), repeated at the top of every other page.
        band_top = header_band_top(image)
        assert band_top is not None, f"page {number} has no grey header row"
        if number > 1:
            assert band_top < 0.1, f"page {number} does not start with the rows' header"
    # The first page: the title and summary at the top (bold, dense), zebra rows below.
    first = long_pages[0]
    assert ink(first, (0.04, 0.06, 0.5, 0.1)) > 0.05, "no title"
    assert share(first, (0.04, 0.2, 0.96, 0.8), 230, 245) > 0.05, "no zebra rows"
    # The last page ends with its rows: white below them but for the page number.
    assert ink(long_pages[-1], (0.035, 0.75, 0.965, 0.93)) == 0


def test_every_row_is_on_exactly_one_page_with_the_page_numbers(
    long_pdf: bytes, tmp_path: Path
) -> None:
    texts = page_texts(long_pdf, tmp_path)
    assert len(texts) == PAGES
    for number, text in enumerate(texts, start=1):
        assert f"page {number} of {PAGES}" in text
        if number > 1:
            assert re.search(r"deal\s+time\s+login\s+symbol\s+lvl\s+plan\s+lots", text)
    first = texts[0]
    for expected in (
        "Introducing broker commission statement",
        "Direct IB (5b0e2c1e-0000-4000-8000-000000000002)",
        "2026-01-01 00:00 to 2026-01-08 00:00 (end excluded)",
        "direct v1",
        "92.80 USD (60 rows)",
        "Per client (MT5 login)",
        "Per symbol",
        "Per level",
        "Rows and their calculation",
    ):
        assert expected in first, expected
    # A row starts its line with its deal number and ends it with its amount; the trace's
    # calculation is on the row.
    rows_per_page = [
        [int(m) for m in re.findall(r"^\s*(\d+)\s+2026-01-01\s.*?[-\d.]+\s*$", text, re.M)]
        for text in texts
    ]
    assert sorted(deal for page in rows_per_page for deal in page) == list(range(ROWS))
    assert all(rows_per_page), "a page without rows"
    assert texts[-1].count("per_lot rule 0: 0.4 x 4 = 1.6 (0.40 lots)") == len(rows_per_page[-1])


def test_pages_are_identical_to_stock_weasyprints_render(
    long_pages: list[Image.Image], tmp_path: Path
) -> None:
    """The reference: WeasyPrint as shipped (its full HTML5 UA sheet, a fresh font
    configuration, the stylesheet parsed for this render) on the same HTML."""
    reference = HTML(string=render_html(statement(ROWS))).write_pdf(
        stylesheets=[CSS(filename=str(STYLESHEET))]
    )
    expected = pages(reference, tmp_path)
    assert len(expected) == len(long_pages)
    for number, (image, want) in enumerate(zip(long_pages, expected, strict=True), start=1):
        assert ImageChops.difference(image, want).getbbox() is None, f"page {number} differs"


def test_an_adjustment_row_is_in_italics(tmp_path: Path) -> None:
    """The same three rows with the last one an adjustment or not: the page differs in that
    row's band only (upright and italic glyphs differ), amount and all else equal."""
    adjusted = statement(3)
    upright = replace(adjusted, lines=[replace(row, adjustment=False) for row in adjusted.lines])
    (italic_page,) = pages(render_statement(adjusted), tmp_path / "italic")
    (upright_page,) = pages(render_statement(upright), tmp_path / "upright")
    changed = ImageChops.difference(italic_page, upright_page).getbbox()
    assert changed is not None, "the adjustment row is not set apart"
    _, top, _, bottom = changed
    # One row (two lines of 8.5 pt, ~4 % of the page height at most), the table's last.
    assert (bottom - top) / italic_page.size[1] < 0.05
    assert ink(italic_page, (0.035, bottom / italic_page.size[1] + 0.01, 0.965, 0.93)) == 0


def test_a_short_statement_is_one_page_with_its_breakdowns(tmp_path: Path) -> None:
    short = statement(3)
    html = render_html(short)
    for heading in (
        "Per client (MT5 login)",
        "Per symbol",
        "Per level",
        "Rows and their calculation",
    ):
        assert heading in html
    # 1.60 + 1.60 - 1.60 (the last row an adjustment) = 1.60 USD.
    assert "1.60 USD (3 rows)" in html
    images = pages(render_statement(short), tmp_path)
    assert len(images) == 1
    # The title and summary on top, the rows' table below the breakdowns.
    assert ink(images[0], (0.04, 0.06, 0.96, 0.2)) > 0.01
    assert ink(images[0], (0.04, 0.6, 0.96, 0.85)) > 0.01


def test_fraud_flags_are_a_section_for_finance_that_the_ibs_copy_has_not(
    long_pdf: bytes, long_pages: list[Image.Image], tmp_path: Path
) -> None:
    """The IB's open flags come after the statement's pages, pixel for pixel the pages without
    them (numbered "of 4" still), on a page of their own marked for finance; the IB's copy
    (cut at the section's bookmark, as the portal serves it) is exactly the statement's pages."""
    flag = StatementFlag(
        rule="self_referral_ip",
        evidence_key="client:5b0e2c1e-0000-4000-8000-000000000003",
        detail="a client of the IB logged in from the IB's address",
        evidence='ips: ["203.0.113.7"]',
        detected="2026-01-03 00:00 UTC",
    )
    flagged = render_statement(replace(statement(ROWS), fraud_flags=[flag]))
    images = pages(flagged, tmp_path / "flagged")
    assert len(images) == PAGES + 1
    for number, (image, want) in enumerate(zip(images, long_pages, strict=False), start=1):
        assert ImageChops.difference(image, want).getbbox() is None, f"page {number} differs"
    texts = page_texts(flagged, tmp_path / "flagged")
    assert f"page {PAGES} of {PAGES}" in texts[PAGES - 1]
    finance = texts[PAGES]
    for expected in (
        "For finance: open fraud flags of this IB",
        "self_referral_ip",
        '["203.0.113.7"]',
        "for finance, not in the IB's copy: page 1 of 1",
    ):
        assert expected in finance, expected
    ib_copy = without_trailing_section(flagged, FINANCE_SECTION_TITLE)
    copy_pages = pages(ib_copy, tmp_path / "copy")
    assert len(copy_pages) == PAGES
    for number, (image, want) in enumerate(zip(copy_pages, long_pages, strict=True), start=1):
        assert ImageChops.difference(image, want).getbbox() is None, f"page {number} differs"
    assert "203.0.113.7" not in "".join(page_texts(ib_copy, tmp_path / "copy"))
    # Without flags there is nothing to cut.
    assert without_trailing_section(long_pdf, FINANCE_SECTION_TITLE) is long_pdf


def test_the_process_pool_renders_the_same_bytes() -> None:
    """`render_statements` (the pool, in order) and `render_statement(pooled=True)`, as the
    bench and the payout's statement step call them, give the bytes of an in-process render."""
    first, second = statement(3), replace(statement(4), payout_id="another")
    try:
        assert render_statements([first, second]) == [
            render_statement(first),
            render_statement(second),
        ]
        assert render_statement(second, pooled=True) == render_statement(second)
    finally:
        shutdown_pool()
