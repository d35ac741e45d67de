"""A rendered statement, checked page by page as images (poppler's pdftoppm): as many pages as
its rows need, every page with ink in its table area, the first with the summary and the three
breakdowns above the rows."""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from reports.ib_statement import Statement, StatementLine, render_html, render_statement

pytestmark = pytest.mark.skipif(
    shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm) is not installed"
)


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
    (directory / "statement.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", str(directory / "statement.pdf"), str(directory / "page")],
        check=True,
        timeout=60,
    )
    return [Image.open(p).convert("L") for p in sorted(directory.glob("page-*.png"))]


def dark_share(image: Image.Image, top: float, bottom: float) -> float:
    """The share of dark pixels in the band from `top` to `bottom` (fractions of the height)."""
    width, height = image.size
    band = image.crop((0, int(height * top), width, int(height * bottom)))
    histogram = band.histogram()
    return sum(histogram[:128]) / (band.size[0] * band.size[1])


def test_a_long_statement_has_ink_on_every_page_and_ends_with_its_last_row(
    tmp_path: Path,
) -> None:
    long = statement(120)
    images = pages(render_statement(long), tmp_path)
    # 120 rows of two lines each at 8.5 pt on A4 landscape cannot fit on fewer than 3 pages.
    assert len(images) >= 3
    for number, image in enumerate(images, start=1):
        width, height = image.size
        assert width > height, f"page {number} is not landscape"
        # The table area (the middle of the page) carries text and rules, not a blank page.
        assert dark_share(image, 0.15, 0.85) > 0.01, f"page {number} is blank in its table area"
    # The last page's table ends above its bottom margin: below the last row the page is white
    # but for the page number.
    assert dark_share(images[-1], 0.96, 1.0) < 0.01


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
    # The title and summary on top, the rows' table at the bottom of the page.
    assert dark_share(images[0], 0.0, 0.2) > 0.01
    assert dark_share(images[0], 0.72, 0.92) > 0.01
    # The margins stay white.
    assert dark_share(images[0].rotate(90, expand=True), 0.0, 0.03) < 0.001
