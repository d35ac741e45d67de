"""`python -m ib.preview`: the worked example of docs/ib-commissions.md run as a command and
checked against the doc's hand-computed tables, stdin, and bad input answered with exit 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "ib-commissions.md").read_text()
EXAMPLE = ROOT / "docs" / "examples" / "ib-preview.json"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ib.preview", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def block(name: str) -> str:
    found = re.search(rf"<!-- {name}:start -->(.*?)<!-- {name}:end -->", DOC, re.S)
    assert found, f"docs/ib-commissions.md has no {name} block"
    return found.group(1)


def table(name: str) -> list[list[str]]:
    lines = [line for line in block(name).strip().splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def result_of(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert (completed.returncode, completed.stderr) == (0, "")
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


def last_number(cell: str) -> Decimal:
    """The figure a hand-computed cell ends on: `4 x 0.4 = 1.6` -> 1.6, `1.08 EUR` -> 1.08."""
    return Decimal(re.findall(r"-?\d+(?:\.\d+)?", cell.split("=")[-1])[0])


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    return result_of(run(str(EXAMPLE)))


def test_rows_are_the_docs_hand_computed_rows(example: dict[str, Any]) -> None:
    expected = []
    for deal, ib, level, version, lots, own, below, earned, amount in table("example-rows"):
        figures = [last_number(cell) for cell in (lots, own, below, earned)]
        paid, currency = amount.split()
        expected.append(
            (int(deal), ib, int(level), int(version), *figures, Decimal(paid), currency)
        )
    got = [
        (
            r["deal"],
            r["ib"],
            r["level"],
            r["version"],
            Decimal(r["volume"]),
            Decimal(r["own"]),
            Decimal(r["below"]),
            Decimal(r["earned"]),
            Decimal(r["amount"]),
            r["currency"],
        )
        for r in example["rows"]
    ]
    assert got == expected


def test_totals_are_the_docs_totals(example: dict[str, Any]) -> None:
    expected = [
        {"ib": ib, "amount": amount.split()[0], "currency": amount.split()[1], "rows": int(rows)}
        for ib, amount, rows, _sum in table("example-totals")
    ]
    [period] = example["periods"]
    assert (period["start"], period["end"], period["totals"]) == (
        1767225600,
        1767830400,
        expected,
    )
    assert (example["unattributed"], example["adjustments"]) == ([], [])


def test_the_printed_row_in_the_doc_is_the_commands(example: dict[str, Any]) -> None:
    shown = json.loads(block("example-row").strip().removeprefix("```json").removesuffix("```"))
    assert shown in example["rows"]


def test_stdin_gives_the_same_answer(example: dict[str, Any]) -> None:
    assert result_of(run("-", stdin=EXAMPLE.read_text())) == example


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "is not JSON"),
        ("[]", "the document is not valid"),
        (
            EXAMPLE.read_text().replace('"plan": "sub"', '"plan": "gone"'),
            "IB S: plan gone is not in plans",
        ),
        (
            EXAMPLE.read_text().replace('"Volume": "4000"', '"Volume": "lots"'),
            "deals.2.Volume: Input should be a valid integer",
        ),
        (
            EXAMPLE.read_text().replace('"rate": "0.9"', '"rate": "0.9"}, {"from": "X"'),
            "rates.1",
        ),
        (
            EXAMPLE.read_text().replace('{"from": "USD", "to": "EUR", "rate": "0.9"}', ""),
            "no rate from USD to EUR",
        ),
        (
            EXAMPLE.read_text().replace(
                '"from": 1767225600, "currency": "USD", "pay',
                '"from": 1767225800, "currency": "USD", "pay',
            ),
            "deal 1: plan master of IB M has no version in force",
        ),
    ],
)
def test_bad_input_is_exit_2_with_a_message(text: str, message: str) -> None:
    completed = run("-", stdin=text)
    assert completed.returncode == 2
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""


def test_a_missing_file_is_exit_2(tmp_path: Path) -> None:
    completed = run(str(tmp_path / "absent.json"))
    assert completed.returncode == 2
    assert "cannot read" in completed.stderr
