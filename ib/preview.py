"""`python -m ib.preview FILE` (`-` reads stdin): the commission rows and per-IB totals of a
what-if document, computed by domain.ib, printed as JSON. The format is docs/ib-commissions.md.

Bad input is answered on stderr with exit code 2, never with a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from domain.errors import InvalidInput
from domain.ib.commissions import PreviewInput, preview

BAD_INPUT = 2


def _read(source: str) -> Any:
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    # Prices and amounts stay decimal: a JSON number never passes through a float.
    return json.loads(text, parse_float=Decimal)


def _explain(error: ValidationError) -> str:
    return "\n".join(
        f"  {'.'.join(str(part) for part in e['loc']) or 'document'}:"
        f" {e['msg'].removeprefix('Value error, ')}"
        for e in error.errors()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ib.preview", description=__doc__)
    parser.add_argument("file", help="the what-if document (JSON), or - for stdin")
    args = parser.parse_args(argv)
    try:
        result = preview(PreviewInput.model_validate(_read(args.file)))
    except OSError as e:
        print(f"ib.preview: cannot read {args.file}: {e.strerror}", file=sys.stderr)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        print(f"ib.preview: {args.file} is not JSON: {e}", file=sys.stderr)
    except ValidationError as e:
        print(f"ib.preview: the document is not valid:\n{_explain(e)}", file=sys.stderr)
    except InvalidInput as e:
        print(f"ib.preview: {e.detail}", file=sys.stderr)
    else:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
        return 0
    return BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
