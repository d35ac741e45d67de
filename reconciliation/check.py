"""`python -m reconciliation.check FILE` (`-` reads stdin): the breaks of one day's MT5 balance
deals, ledger movements and settlement rows, found by `domain.reconciliation` (the code the
scheduled run uses), printed as JSON. The format is docs/reconciliation.md.

Bad input is answered on stderr with exit code 2, never with a traceback.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from domain.reconciliation.matching import reconcile
from domain.reconciliation.records import break_json
from reconciliation.document import Document, sides_of
from whatif.command import run_what_if


def check(document: Document) -> dict[str, Any]:
    """The command's answer for a valid document."""
    period = document.period()
    result = reconcile(period, sides_of(document))
    counts = Counter(found.type.value for found in result.breaks)
    return {
        "day": document.day.isoformat(),
        "start": period.start.isoformat(),
        "end": period.end.isoformat(),
        "matched": result.matched,
        "breaks": [break_json(found) for found in result.breaks],
        "by_type": dict(sorted(counts.items())),
        "cleared": result.cleared,
    }


def answer(document: Any) -> dict[str, Any]:
    return check(Document.model_validate(document))


def main(argv: list[str] | None = None) -> int:
    return run_what_if("reconciliation.check", __doc__, answer, argv)


if __name__ == "__main__":
    sys.exit(main())
