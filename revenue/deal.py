"""`python -m revenue.deal FILE` (`-` reads stdin): per deal the spread and markup the broker
captured, slippage, commission and fee revenue, B-book P&L and A-book cost; totals per currency,
the house's floating B-book P&L, the mirrored dealer rules checked against the deals' markup and
routing, and slippage patterns per symbol, LP gateway and hour; computed by domain.revenue (the
live view's code), printed as JSON. The format is docs/revenue.md.

Bad input is answered on stderr with exit code 2, never with a traceback.
"""

from __future__ import annotations

import sys
from typing import Any

from domain.revenue_document import RevenueDocument, answer
from whatif.command import run_what_if


def run(document: Any) -> dict[str, Any]:
    """The answer to a parsed document (raises ValidationError)."""
    return answer(RevenueDocument.model_validate(document))


def main(argv: list[str] | None = None) -> int:
    return run_what_if("revenue.deal", __doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
