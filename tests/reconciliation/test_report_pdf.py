"""A run's report rendered and checked as images (poppler's pdftoppm) and as text (pdftotext):
A4 landscape pages, the table header band repeated on top of every page of breaks, white
margins, each break on exactly one page, the sign-off or its absence in red/green words, and a
clean day's one-page report saying so. The CSV has the same breaks."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from reports.reconciliation import ReportBreak, RunReport, TypeTotal, render_csv, render_pdf

pytestmark = pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
    reason="poppler-utils (pdftoppm, pdftotext) is not installed",
)
DPI = 40
BREAKS = 40


def a_break(n: int) -> ReportBreak:
    return ReportBreak(
        type="missing_in_ledger" if n % 2 else "amount_mismatch",
        key=f"mt5:{5000000 + n}:BF{n:020d}:in",
        reference=f"BF{n:020d}",
        deal=str(90000 + n),
        login=str(5000000 + n),
        provider="",
        amount=f"{n}.50",
        currency="USD",
        found_in="mt5",
        missing_from="ledger",
        expected="",
        actual="",
        expected_currency="",
        detail="deal with BrokerFlow's comment and no ledger movement",
        case_status="open",
        age_days=str(n % 5),
    )


def report(breaks: list[ReportBreak], signed: str = "") -> RunReport:
    return RunReport(
        server="live-1",
        day="2026-12-06",
        period="2026-12-05 22:00 to 2026-12-06 22:00 UTC",
        status="matched",
        matched=1234,
        deals=800,
        settlement_rows=450,
        generated_at="2026-12-07 01:00 UTC",
        signed_off=signed,
        breaks=breaks,
        by_type=[TypeTotal(type="missing_in_ledger", count=len(breaks), totals="1.00 USD")],
    )


def rendered(pdf: bytes, directory: Path) -> tuple[list[Image.Image], list[str]]:
    shutil.rmtree(directory, ignore_errors=True)  # pages of an earlier run
    directory.mkdir(parents=True)
    (directory / "report.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", str(DPI), str(directory / "report.pdf"), str(directory / "p")],
        check=True,
        timeout=60,
    )
    images = [Image.open(p).convert("RGB") for p in sorted(directory.glob("p-*.png"))]
    text = subprocess.run(
        ["pdftotext", "-layout", str(directory / "report.pdf"), "-"],
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    return images, text.split("\f")[:-1]


def share(
    image: Image.Image,
    box: tuple[float, float, float, float],
    test: Callable[[int, int, int], bool],
) -> float:
    """The share of pixels in `box` (fractions of the page) for which `test(r, g, b)` holds."""
    width, height = image.size
    crop = image.crop(
        (int(box[0] * width), int(box[1] * height), int(box[2] * width), int(box[3] * height))
    )
    pixels: list[tuple[int, int, int]] = list(crop.getdata())
    return sum(1 for p in pixels if test(*p)) / max(1, len(pixels))


def header_band(r: int, g: int, b: int) -> bool:
    """The table header's dark blue (#1f3a5f)."""
    return r < 70 and 40 < g < 90 and b > 70


def white(r: int, g: int, b: int) -> bool:
    return min(r, g, b) > 245


def test_a_run_with_breaks_is_laid_out_page_by_page(artifacts_dir: Path) -> None:
    breaks = [a_break(n) for n in range(1, BREAKS + 1)]
    images, texts = rendered(render_pdf(report(breaks)), artifacts_dir / "reconciliation-pdf")

    assert len(images) == len(texts) >= 3
    for number, image in enumerate(images, start=1):
        width, height = image.size
        assert width > height  # A4 landscape
        # White margins left and right, and above the page's content.
        assert share(image, (0, 0, 0.03, 1), white) > 0.99
        assert share(image, (0.97, 0, 1, 1), white) > 0.99
        assert share(image, (0, 0, 1, 0.03), white) > 0.99
        # The page number, bottom right.
        assert f"page {number} of {len(images)}" in texts[number - 1]
    # The breaks' header band repeated at the top of every page after the first.
    for image in images[1:]:
        assert share(image, (0.05, 0.04, 0.95, 0.12), header_band) > 0.1
    # Every break on exactly one page, in order.
    keys = [b.key for b in breaks]
    seen = [key for text in texts for key in keys if key in text]
    assert seen == keys
    assert "not signed off" in texts[0] and "Breaks by type" in texts[0]
    # "not signed off" in red on the first page.
    assert share(images[0], (0, 0, 1, 0.3), lambda r, g, b: r > 120 and g < 60 and b < 60) > 0


def test_a_clean_signed_off_day_is_one_page(artifacts_dir: Path) -> None:
    signed = "signed off by Fin Ance at 2026-12-07 08:00 UTC: reviewed"
    images, texts = rendered(render_pdf(report([], signed)), artifacts_dir / "reconciliation-clean")
    assert len(images) == 1
    assert "No breaks" in texts[0] and signed in " ".join(texts[0].split())
    assert share(images[0], (0, 0, 1, 1), header_band) == 0  # no table at all


def test_the_csv_has_the_same_breaks_and_no_formulas() -> None:
    breaks = [a_break(1), a_break(2)]
    evil = ReportBreak(**{**a_break(3).__dict__, "detail": '=HYPERLINK("http://x")'})
    rows = list(csv.DictReader(io.StringIO(render_csv(report([*breaks, evil])))))
    assert [(r["key"], r["amount"]) for r in rows] == [(b.key, b.amount) for b in [*breaks, evil]]
    assert rows[2]["detail"].startswith("'=")
