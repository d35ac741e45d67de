"""`python -m ib.preview FILE` (`-` reads stdin): the commission rows and per-IB totals of a
what-if document, computed by domain.ib, printed as JSON. The format is docs/ib-commissions.md.

Bad input is answered on stderr with exit code 2, never with a traceback.
"""

from __future__ import annotations

import sys
from typing import Any

from domain.ib.commissions import PreviewInput, preview
from whatif.command import run_what_if


def answer(document: Any) -> Any:
    return preview(PreviewInput.model_validate(document)).model_dump(mode="json")


def main(argv: list[str] | None = None) -> int:
    return run_what_if("ib.preview", __doc__, answer, argv)


if __name__ == "__main__":
    sys.exit(main())
