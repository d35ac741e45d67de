"""IB statement PDFs: `--size` statements (default 1,000) of `--rows` commission rows each,
rendered by `reports.ib_statement` (Jinja2 + WeasyPrint) in its process pool, one process per
core (`render_statements`; one statement goes there with `render_statement(..., pooled=True)`).

    python -m bench.statements            # 1,000 statements
    python -m bench.statements --size 50

The baseline is the same renderer one statement after another in this one warm process (fonts
and stylesheets loaded), over the first `--baseline` statements, measured in the same run;
`ratio` is the pool's rate over it (about the number of cores when the pool scales, less when
other processes share the CPU). `baseline_cpu_ms` is the CPU time of one serial render, the
figure least moved by a busy machine.

Last line: `RESULT pdfs_per_s=… statements=… rows_per_statement=… pages=… workers=…
baseline_pdfs_per_s=… ratio=… baseline_cpu_ms=…` (pages: of the first statement).
"""

from __future__ import annotations

import argparse
import io
import random
import time
from decimal import Decimal

from pypdf import PdfReader

from reports.ib_statement import (
    Statement,
    StatementLine,
    pool_workers,
    render_statement,
    render_statements,
    shutdown_pool,
)

SYMBOLS = ("EURUSD", "GBPUSD", "XAUUSD", "USDJPY", "")


def statement(number: int, rows: int, rng: random.Random) -> Statement:
    lines = []
    for n in range(rows):
        lots = Decimal(rng.choice((10, 40, 50, 100))) / 100
        rate = Decimal(rng.choice((4, 7, 10)))
        lines.append(
            StatementLine(
                deal=1_000_000 + number * rows + n,
                time=f"2026-01-{1 + n % 28:02d} 12:{n % 60:02d}:00",
                login=100000 + rng.randrange(40),
                symbol=rng.choice(SYMBOLS),
                level=1 + rng.randrange(5),
                plan="direct",
                version=1,
                volume=str(lots),
                volume_why=f"OUT: {lots:.2f} closed; round turn counts closes: {lots:.2f}",
                calculation=f"per_lot rule 0: {lots} x {rate} = {lots * rate} ({lots:.2f} lots);"
                f" own {lots * rate}, capped {lots * rate}, below 0 → earned {lots * rate} USD",
                amount=lots * rate,
                adjustment=False,
            )
        )
    return Statement(
        payout_id=f"00000000-0000-4000-8000-{number:012d}",
        ib_name=f"IB {number}",
        ib_id=f"00000000-0000-4000-9000-{number:012d}",
        period="2026-01-01 00:00 to 2026-02-01 00:00 (end excluded)",
        currency="USD",
        status="statement_ready",
        lines=lines,
    )


def main(size: int, rows: int, baseline: int) -> None:
    rng = random.Random(14)
    statements = [statement(n, rows, rng) for n in range(size)]
    workers = pool_workers()
    # Warm-up, not timed: the pool's processes started (each loads WeasyPrint, the fonts and
    # the stylesheets once), and this process's renderer for the baseline.
    render_statements(statements[:workers], chunk=1)
    first = render_statement(statements[0])

    sample = statements[: max(1, min(baseline, size))]
    begun, cpu = time.perf_counter(), time.process_time()
    for one in sample:
        render_statement(one)
    serial_seconds = time.perf_counter() - begun
    serial_cpu = time.process_time() - cpu

    begun = time.perf_counter()
    rendered = sum(pdf.startswith(b"%PDF") for pdf in render_statements(statements))
    seconds = time.perf_counter() - begun
    shutdown_pool()
    assert rendered == size, f"{size - rendered} statements did not render"

    pages = len(PdfReader(io.BytesIO(first)).pages)
    rate, serial_rate = size / seconds, len(sample) / serial_seconds
    print(
        f"RESULT pdfs_per_s={rate:.2f} statements={size} rows_per_statement={rows}"
        f" pages={pages} workers={workers} baseline_pdfs_per_s={serial_rate:.2f}"
        f" ratio={rate / serial_rate:.2f} baseline_cpu_ms={serial_cpu / len(sample) * 1000:.0f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1000, help="statements")
    parser.add_argument("--rows", type=int, default=50, help="commission rows per statement")
    parser.add_argument(
        "--baseline", type=int, default=20, help="statements rendered serially for the baseline"
    )
    args = parser.parse_args()
    main(args.size, args.rows, args.baseline)
