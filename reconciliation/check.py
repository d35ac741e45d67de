"""`python -m reconciliation.check FILE` (`-` reads stdin): the breaks of one day's MT5 balance
deals, ledger movements and settlement rows, found by `domain.reconciliation` (the code the
scheduled run uses; with `waiting`, the payments waiting on a processor classified by
`domain.reconciliation.waiting` as its matching step does), printed as JSON. The format is
docs/reconciliation.md.

Bad input is answered on stderr with exit code 2, never with a traceback.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, timedelta
from typing import Any

from domain.reconciliation.matching import reconcile
from domain.reconciliation.records import break_json
from domain.reconciliation.waiting import classify_waiting
from reconciliation.document import Document, sides_of, waiting_of
from whatif.command import run_what_if


def check(document: Document) -> dict[str, Any]:
    """The command's answer for a valid document."""
    period = document.period()
    sides = sides_of(document)
    result = reconcile(period, sides)
    if document.waiting is not None:  # as the scheduled run's matching step (match_run)
        result = classify_waiting(
            result,
            sides.psp,
            waiting_of(document),
            as_of=(document.as_of or period.end).astimezone(UTC),
            stuck_after=timedelta(seconds=document.stuck_after_seconds),
        )
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
