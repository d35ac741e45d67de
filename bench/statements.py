"""IB statement PDFs: `--size` statements (default 1,000) of `--rows` commission rows each,
rendered by `reports.ib_statement` (Jinja2 + WeasyPrint) as the payout's statement step does,
one after another in one process.

    python -m bench.statements --size 20

Last line: `RESULT pdfs_per_s=… statements=… rows_per_statement=… pages=…` (pages: of the
first statement).
"""

from __future__ import annotations

import argparse
import io
import random
import time
from decimal import Decimal

from pypdf import PdfReader

from reports.ib_statement import Statement, StatementLine, render_statement

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


def main(size: int, rows: int) -> None:
    rng = random.Random(14)
    statements = [statement(n, rows, rng) for n in range(size)]
    render_statement(statements[0])  # warm-up: fonts and templates loaded once
    begun = time.perf_counter()
    first = b""
    for one in statements:
        pdf = render_statement(one)
        first = first or pdf
    seconds = time.perf_counter() - begun
    pages = len(PdfReader(io.BytesIO(first)).pages)
    print(
        f"RESULT pdfs_per_s={size / seconds:.2f} statements={size}"
        f" rows_per_statement={rows} pages={pages}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1000, help="statements")
    parser.add_argument("--rows", type=int, default=50, help="commission rows per statement")
    args = parser.parse_args()
    main(args.size, args.rows)
