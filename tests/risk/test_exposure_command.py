"""`python -m risk.exposure`: the worked example of docs/risk-exposure.md run as a command and
checked against the doc's hand-computed table, stdin, and bad input answered with exit 2."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from risk.exposure import main

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "risk-exposure.md").read_text()
EXAMPLE = ROOT / "docs" / "examples" / "exposure.json"


def figures_table() -> list[tuple[str, str]]:
    found = re.search(r"<!-- example-figures:start -->(.*?)<!-- example-figures:end -->", DOC, re.S)
    assert found, "docs/risk-exposure.md has no example-figures block"
    lines = [line for line in found.group(1).strip().splitlines() if line.startswith("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    return [(path, value) for path, value, _ in rows]


def at(answer: Any, path: str) -> Any:
    for part in path.split("."):
        answer = answer[int(part)] if isinstance(answer, list) else answer[part]
    return answer


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "risk.exposure", str(EXAMPLE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (completed.returncode, completed.stderr) == (0, "")
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


def test_the_docs_hand_computed_figures(example: dict[str, Any]) -> None:
    table = figures_table()
    assert len(table) >= 20
    assert [(path, str(at(example, path))) for path, _ in table] == table


def test_stdin_gives_the_same_answer(
    example: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(EXAMPLE.read_text()))
    assert main(["-"]) == 0
    assert json.loads(capsys.readouterr().out) == example


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(EXAMPLE.read_text())
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not JSON"),
        (json.dumps(document(currency="usd")), "currency"),
        (json.dumps(document(typo=1)), "typo"),
        (json.dumps(document(quotes=[])), "no quote"),
        (
            json.dumps(document(positions=[{"Position": 1, "Login": 1, "Symbol": "EURUSD"}])),
            "positions.0.Action",
        ),
        (
            json.dumps(
                document(
                    positions=[
                        {
                            "Position": 1,
                            "Login": 4242,
                            "Symbol": "EURUSD",
                            "Action": 0,
                            "Volume": 100,
                            "PriceOpen": "1.1",
                        }
                    ]
                )
            ),
            "login 4242 is not in accounts",
        ),
        (
            json.dumps(
                document(
                    positions=[
                        {
                            "Position": n,
                            "Login": 1002,
                            "Symbol": "EURGBP",
                            "Action": n - 1,
                            "Volume": 100,
                            "PriceOpen": "0.86",
                        }
                        for n in (1, 2)
                    ]
                )
            ),
            "nets its positions",
        ),
    ],
)
def test_bad_input_is_exit_2_with_a_message(
    text: str,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "doc.json"
    path.write_text(text)
    assert main([str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert "Traceback" not in captured.err


def test_a_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([str(tmp_path / "absent.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
