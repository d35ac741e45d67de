"""The shell of a what-if command: one JSON document in (a file, or `-` for stdin), the answer
out as JSON, bad input on stderr with exit code 2 and never a traceback. Hand-computed cases
from outside the project are run through these commands, so every one reads and refuses the
same way; only the calculation differs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from domain.errors import InvalidInput

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


def run_what_if(
    name: str, description: str | None, answer: Callable[[Any], Any], argv: list[str] | None
) -> int:
    """Parse `argv`, read the document, print `answer(document)` as JSON; 0, or 2 with the
    reason on stderr. `answer` raises ValidationError or InvalidInput (or ValueError) for a
    document it cannot answer."""
    parser = argparse.ArgumentParser(prog=f"python -m {name}", description=description)
    parser.add_argument("file", help="the what-if document (JSON), or - for stdin")
    args = parser.parse_args(argv)
    try:
        result = answer(_read(args.file))
    except OSError as e:
        print(f"{name}: cannot read {args.file}: {e.strerror}", file=sys.stderr)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        print(f"{name}: {args.file} is not JSON: {e}", file=sys.stderr)
    except ValidationError as e:
        print(f"{name}: the document is not valid:\n{_explain(e)}", file=sys.stderr)
    except InvalidInput as e:
        print(f"{name}: {e.detail}", file=sys.stderr)
    except ValueError as e:
        print(f"{name}: {e}", file=sys.stderr)
    else:
        print(json.dumps(result, indent=2))
        return 0
    return BAD_INPUT
