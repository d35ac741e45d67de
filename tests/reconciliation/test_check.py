"""`python -m reconciliation.check`: the documented example, stdin, and bad input answered on
stderr with exit code 2, never a traceback. Run in-process (`main`), once as a real command."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from reconciliation.check import main
from whatif.command import BAD_INPUT

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "reconciliation-day.json"
EXPECTED = ROOT / "docs" / "examples" / "reconciliation-day.out.json"


def test_the_documented_example_gives_the_documented_breaks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([str(EXAMPLE)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer == json.loads(EXPECTED.read_text())
    assert len(answer["by_type"]) == 11  # every break type, once


def test_stdin_as_a_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reconciliation.check", "-"],
        cwd=ROOT,
        input=EXAMPLE.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(EXPECTED.read_text())


def test_a_clean_day_has_no_breaks(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    document = {
        "day": "2026-12-07",
        "currency": "USD",
        "mt5_deals": [
            {
                "Deal": 1,
                "Login": 7,
                "Time": 1796637600,
                "Action": 2,
                "Profit": 10.5,
                "Comment": "dep BF1",
            },
        ],
        "ledger": [
            {
                "key": "BF1:to-mt5",
                "reference": "BF1",
                "side": "mt5",
                "login": 7,
                "time": "2026-12-07T10:00:00Z",
                "amount": "10.50",
                "currency": "USD",
            },
        ],
    }
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(document)))
    assert main(["-"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["breaks"] == [] and answer["matched"] == 1


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{", "is not JSON"),
        ("[]", "not valid"),
        ('{"day": "2026-13-01"}', "day"),
        (
            '{"day": "2026-12-07", "mt5_deals": [{"Deal": 1, "Login": 2, "Time": 3, "Action": 2,'
            ' "Profit": "1.00"}]}',
            "no currency for login 2",
        ),
        (
            '{"day": "2026-12-07", "currency": "USD", "mt5_deals": [{"Deal": 1, "Login": 2,'
            ' "Time": 3, "Action": 2, "Profit": "1.001"}]}',
            "more decimals",
        ),
        (
            '{"day": "2026-12-07", "currency": "XXX", "mt5_deals": [{"Deal": 1, "Login": 2,'
            ' "Time": 3, "Action": 2, "Profit": "1"}]}',
            "unsupported currency",
        ),
        (
            '{"day": "2026-12-07", "ledger": [{"key": "k", "reference": "r", "side": "psp",'
            ' "time": "2026-12-07T10:00:00", "amount": "1", "currency": "USD"}]}',
            "zone",
        ),
        (
            '{"day": "2026-12-07", "psp": [{"provider": "p", "date": "2026-12-07",'
            ' "payment_id": "x", "reference": "r", "type": "gift", "currency": "USD",'
            ' "gross": "1"}]}',
            "type must be one of",
        ),
        (
            '{"day": "2026-12-07", "currency": "USD", "mt5_deals": [{"Deal": 1, "Login": 2,'
            ' "Time": 99999999999999, "Action": 2, "Profit": "1"}]}',
            "Time",
        ),
    ],
)
def test_bad_input_exits_2_without_a_traceback(
    text: str,
    says: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert main(["-"]) == BAD_INPUT
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_a_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([str(tmp_path / "none.json")]) == BAD_INPUT
    assert "cannot read" in capsys.readouterr().err
