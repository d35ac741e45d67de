"""`python -m risk.exposure FILE` (`-` reads stdin): the exposure by symbol, group, country,
region and book, each account's and group's margin and the house's net exposure of a what-if
document, computed by domain.exposure, printed as JSON. The format is docs/risk-exposure.md.

Bad input is answered on stderr with exit code 2, never with a traceback.
"""

from __future__ import annotations

import sys
from typing import Any

from domain.exposure.compute import compute
from domain.exposure.document import ExposureDocument
from domain.exposure.report import report
from whatif.command import run_what_if


def run(document: Any) -> dict[str, Any]:
    """The answer to a parsed document (raises ValidationError or InvalidInput)."""
    doc = ExposureDocument.model_validate(document)
    exposure = compute(doc.market(), doc.account_terms(), doc.position_rows(), doc.order_rows())
    return report(exposure)


def main(argv: list[str] | None = None) -> int:
    return run_what_if("risk.exposure", __doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
